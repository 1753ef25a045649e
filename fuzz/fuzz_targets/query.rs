//! Query strings from the network: parsing never panics, and every accepted value is valid.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pulse::http::query::Query;
use pulse::wire::SessionId;

fuzz_target!(|data: &str| {
    let query = Query::parse(Some(data));
    let _ = query.id("since");
    if let Ok(Some(timeout)) = query.seconds("timeout", Duration::from_secs(120)) {
        assert!(!timeout.is_zero() && timeout <= Duration::from_secs(120));
    }
    if let Ok(Some(session)) = query.session() {
        assert_eq!(SessionId::parse(session.as_str()), Some(session.clone()));
        assert!(session.as_str().len() <= 64);
    }
});

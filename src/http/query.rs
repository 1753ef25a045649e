//! Query-string parameters, validated with errors that say which parameter is wrong and why.

use std::borrow::Cow;
use std::time::Duration;

use super::error::ApiError;
use crate::wire::SessionId;

/// The decoded `key=value` pairs of a query string.
#[derive(Debug, Default)]
pub struct Query<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Query<'a> {
    pub fn parse(raw: Option<&'a str>) -> Self {
        Query(raw.map(|q| form_urlencoded::parse(q.as_bytes()).collect()).unwrap_or_default())
    }

    /// The value of `key`; a key given twice is an error, so nothing is silently ignored.
    pub fn get(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_ref());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!("`{key}` is given more than once")));
        }
        Ok(first)
    }

    /// A non-negative integer id.
    pub fn id(&self, key: &str) -> Result<Option<u64>, ApiError> {
        self.get(key)?
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "`{key}` must be a non-negative integer id, got {v:?}"
                    ))
                })
            })
            .transpose()
    }

    /// Seconds, possibly fractional, in `(0, max]`.
    pub fn seconds(&self, key: &str, max: Duration) -> Result<Option<Duration>, ApiError> {
        self.get(key)?
            .map(|v| {
                let secs = v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0);
                match secs {
                    Some(s) if s <= max.as_secs_f64() => Ok(Duration::from_secs_f64(s)),
                    _ => Err(ApiError::bad_request(format!(
                        "`{key}` must be a number of seconds above 0 and at most {}, got {v:?}",
                        max.as_secs()
                    ))),
                }
            })
            .transpose()
    }

    /// The page session the request's bytes are attributed to.
    pub fn session(&self) -> Result<Option<SessionId>, ApiError> {
        self.get("session")?
            .map(|v| {
                SessionId::parse(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`session` must be 1 to {} characters of A-Z a-z 0-9 - _ ., got {v:?}",
                        crate::wire::stats::MAX_SESSION_ID_LEN
                    ))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let q = Query::parse(Some("since=42&timeout=1.5&session=ab-c&x=%20y"));
        assert_eq!(q.id("since").unwrap(), Some(42));
        assert_eq!(
            q.seconds("timeout", Duration::from_secs(120)).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(q.session().unwrap().unwrap().as_str(), "ab-c");
        assert_eq!(q.get("x").unwrap(), Some(" y"));
        assert_eq!(q.get("absent").unwrap(), None);
    }

    #[test]
    fn rejects_bad_values_with_the_parameter_named() {
        let max = Duration::from_secs(120);
        for (query, key) in [
            ("since=-1", "since"),
            ("since=abc", "since"),
            ("since=1&since=2", "since"),
            ("timeout=0", "timeout"),
            ("timeout=121", "timeout"),
            ("timeout=NaN", "timeout"),
            ("timeout=inf", "timeout"),
            ("session=a%20b", "session"),
            ("session=", "session"),
        ] {
            let q = Query::parse(Some(query));
            let err = match key {
                "since" => q.id("since").unwrap_err(),
                "timeout" => q.seconds("timeout", max).unwrap_err(),
                _ => q.session().unwrap_err(),
            };
            assert_eq!(err.status, 400, "{query}");
            assert!(err.message.contains(key), "{query}: {}", err.message);
        }
    }

    #[test]
    fn no_query_is_empty() {
        assert_eq!(Query::parse(None).id("since").unwrap(), None);
    }
}

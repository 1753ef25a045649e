//! The `Snapshot` (the count at one moment) and its wire renderings, made once per change.

use axum::http::HeaderValue;
use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// The state every transport delivers: how many users are online, which change this is, and
/// when it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub count: u32,
    /// Grows by exactly one with every change of `count`.
    pub id: u64,
    /// When `count` took this value (UTC, RFC 3339 with milliseconds on the wire).
    #[serde(with = "millis")]
    pub timestamp: DateTime<Utc>,
}

impl Snapshot {
    /// The first Snapshot of a fresh count.
    pub fn initial(count: u32, now: DateTime<Utc>) -> Self {
        Snapshot { count, id: 1, timestamp: now.trunc_subsecs(3) }
    }

    /// The Snapshot that follows this one when the count becomes `count` at `now`.
    ///
    /// The time is cut to the milliseconds the wire carries, so a Snapshot read back from its
    /// JSON equals the one that was sent.
    pub fn next(&self, count: u32, now: DateTime<Utc>) -> Self {
        Snapshot { count, id: self.id + 1, timestamp: now.trunc_subsecs(3) }
    }

    /// Milliseconds since the Unix epoch of `timestamp`.
    pub fn timestamp_ms(&self) -> i64 {
        self.timestamp.timestamp_millis()
    }
}

/// A Snapshot with every byte form a transport sends, rendered once and shared by all clients.
#[derive(Debug)]
pub struct Rendered {
    pub snapshot: Snapshot,
    /// `{"count":57,"id":42,"timestamp":"…"}`: the body of `/api/count` and long polls, and the
    /// WebSocket message.
    pub json: Bytes,
    /// `id: 42\ndata: <json>\n\n`: one Server-Sent Event.
    pub sse_event: Bytes,
    /// `sse_event` as one HTTP/1.1 chunk (`<hex length>\r\n<event>\r\n`), ready for the socket of
    /// every open stream.
    pub sse_chunk: Bytes,
    /// `"42"`: the entity tag of `/api/count`.
    pub etag: HeaderValue,
}

impl Rendered {
    pub fn new(snapshot: Snapshot) -> Self {
        let json = Bytes::from(
            serde_json::to_vec(&snapshot).expect("a Snapshot always serialises to JSON"),
        );
        let id = snapshot.id.to_string();
        let mut event = BytesMut::with_capacity(json.len() + id.len() + 12);
        event.put_slice(b"id: ");
        event.put_slice(id.as_bytes());
        event.put_slice(b"\ndata: ");
        event.put_slice(&json);
        event.put_slice(b"\n\n");
        let sse_event = event.freeze();
        let sse_chunk = chunk(&sse_event);
        let etag = HeaderValue::from_str(&etag_for(snapshot.id))
            .expect("a quoted decimal number is a valid header value");
        Rendered { snapshot, json, sse_event, sse_chunk, etag }
    }
}

/// `data` as one chunk of an HTTP/1.1 chunked body, framed as hyper frames it (upper-case hex).
pub fn chunk(data: &[u8]) -> Bytes {
    let size = format!("{:X}\r\n", data.len());
    let mut out = BytesMut::with_capacity(size.len() + data.len() + 2);
    out.put_slice(size.as_bytes());
    out.put_slice(data);
    out.put_slice(b"\r\n");
    out.freeze()
}

/// The entity tag of the Snapshot with this id.
pub fn etag_for(id: u64) -> String {
    format!("\"{id}\"")
}

/// RFC 3339 with exactly three fractional digits and a `Z`, as every client parses it.
mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// `timestamp` as it appears on the wire; for logs and tests.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).unwrap()
    }

    #[test]
    fn json_has_the_contract_shape() {
        let s = Snapshot { count: 57, id: 42, timestamp: at(1_796_412_274_123) };
        let r = Rendered::new(s.clone());
        assert_eq!(
            std::str::from_utf8(&r.json).unwrap(),
            r#"{"count":57,"id":42,"timestamp":"2026-12-04T19:24:34.123Z"}"#
        );
        let back: Snapshot = serde_json::from_slice(&r.json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn whole_seconds_keep_three_fractional_digits() {
        let r = Rendered::new(Snapshot { count: 0, id: 1, timestamp: at(1_796_412_274_000) });
        assert!(std::str::from_utf8(&r.json).unwrap().contains("34.000Z"));
    }

    #[test]
    fn sse_event_is_one_framed_event_with_the_same_json() {
        let r = Rendered::new(Snapshot { count: 7, id: 9, timestamp: at(0) });
        let mut expected = b"id: 9\ndata: ".to_vec();
        expected.extend_from_slice(&r.json);
        expected.extend_from_slice(b"\n\n");
        assert_eq!(&r.sse_event[..], &expected[..]);
    }

    #[test]
    fn sse_chunk_is_the_event_in_chunk_framing() {
        let r = Rendered::new(Snapshot { count: 7, id: 9, timestamp: at(0) });
        let mut expected = format!("{:X}\r\n", r.sse_event.len()).into_bytes();
        expected.extend_from_slice(&r.sse_event);
        expected.extend_from_slice(b"\r\n");
        assert_eq!(&r.sse_chunk[..], &expected[..]);
        assert_eq!(&chunk(b":\n\n")[..], b"3\r\n:\n\n\r\n");
    }

    #[test]
    fn etag_is_the_quoted_id() {
        let r = Rendered::new(Snapshot { count: 7, id: 9, timestamp: at(0) });
        assert_eq!(r.etag, "\"9\"");
    }

    #[test]
    fn json_round_trip_is_exact_for_any_clock_reading() {
        let s = Snapshot::initial(3, Utc::now()).next(4, Utc::now());
        let back: Snapshot = serde_json::from_slice(&Rendered::new(s.clone()).json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn next_advances_the_id_by_one() {
        let s = Snapshot::initial(50, at(0));
        let n = s.next(53, at(2500));
        assert_eq!((n.id, n.count, n.timestamp_ms()), (s.id + 1, 53, 2500));
    }
}

//! An incremental Server-Sent Events parser, as the WHATWG HTML standard describes it: bytes go
//! in in chunks of any size, complete events come out.
//!
//! Pure (no IO, no clock), so it can be tested at every split point and fuzzed.

use std::time::Duration;

/// Longest line kept, in bytes; the rest of a longer line is dropped, so a server that never
/// ends its line cannot grow a client's memory without bound.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest `data` kept for one event, for the same reason.
pub const MAX_DATA: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` type; `message` when the server named none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event ID in force when this event was dispatched (`id:` persists across events).
    pub id: Option<String>,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF that starts the next one belongs to that line end.
    after_cr: bool,
    /// Whether the first bytes have been looked at (a leading UTF-8 BOM is skipped).
    started: bool,
    bom: Vec<u8>,
    data: String,
    event: String,
    last_id: Option<String>,
    retry: Option<Duration>,
    comments: u64,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `bytes` (any part of the stream) and returns the events it completed.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if !self.started {
            // Hold back up to three bytes until we know whether they are a BOM.
            while !bytes.is_empty() && self.bom.len() < BOM.len() && BOM.starts_with(&self.bom) {
                self.bom.push(bytes[0]);
                bytes = &bytes[1..];
            }
            if self.bom.len() < BOM.len() && BOM.starts_with(&self.bom) {
                return events; // still undecided
            }
            self.started = true;
            let held = std::mem::take(&mut self.bom);
            if held != BOM {
                self.scan(&held, &mut events);
            }
        }
        self.scan(bytes, &mut events);
        events
    }

    fn scan(&mut self, bytes: &[u8], events: &mut Vec<SseEvent>) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.push_line_bytes(&rest[..end]);
                    self.after_cr = rest[end] == b'\r';
                    rest = &rest[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.line_complete(&line, events);
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.push_line_bytes(rest);
                    rest = &[];
                }
            }
        }
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn line_complete(&mut self, line: &[u8], events: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" if self.data.len() + value.len() < MAX_DATA => {
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"event" => self.event = value.into_owned(),
            b"id" if !value.contains('\0') => self.last_id = Some(value.into_owned()),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the last "\n"
        let event = if event.is_empty() { "message".to_owned() } else { event };
        events.push(SseEvent { event, data, id: self.last_id.clone() });
    }

    /// The last event ID seen (what a reconnecting client sends as `Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The reconnection delay the server asked for, if it did.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Comment lines seen (heartbeats).
    pub fn comments(&self) -> u64 {
        self.comments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_at_once(input: &[u8]) -> (Vec<SseEvent>, SseParser) {
        let mut p = SseParser::new();
        let events = p.feed(input);
        (events, p)
    }

    /// Every way of cutting `input` in two, and byte by byte, gives the same events.
    fn same_at_every_split(input: &[u8]) -> Vec<SseEvent> {
        let (whole, _) = all_at_once(input);
        for cut in 0..=input.len() {
            let mut p = SseParser::new();
            let mut got = p.feed(&input[..cut]);
            got.extend(p.feed(&input[cut..]));
            assert_eq!(got, whole, "split at {cut} of {:?}", String::from_utf8_lossy(input));
        }
        let mut p = SseParser::new();
        let bytewise: Vec<_> = input.iter().flat_map(|b| p.feed(std::slice::from_ref(b))).collect();
        assert_eq!(bytewise, whole, "byte by byte");
        whole
    }

    fn msg(data: &str, id: Option<&str>) -> SseEvent {
        SseEvent { event: "message".into(), data: data.into(), id: id.map(Into::into) }
    }

    #[test]
    fn pulse_stream_with_retry_events_and_heartbeats() {
        let input =
            b"retry: 1000\nid: 41\ndata: {\"count\":5}\n\n:\n\nid: 42\ndata: {\"count\":6}\n\n";
        let events = same_at_every_split(input);
        assert_eq!(
            events,
            vec![msg("{\"count\":5}", Some("41")), msg("{\"count\":6}", Some("42"))]
        );
        let (_, p) = all_at_once(input);
        assert_eq!(p.retry(), Some(Duration::from_millis(1000)));
        assert_eq!(p.comments(), 1);
        assert_eq!(p.last_event_id(), Some("42"));
    }

    #[test]
    fn crlf_lf_and_cr_line_endings_are_all_line_ends() {
        for input in [
            &b"id: 1\r\ndata: a\r\n\r\ndata: b\r\n\r\n"[..],
            &b"id: 1\ndata: a\n\ndata: b\n\n"[..],
            &b"id: 1\rdata: a\r\rdata: b\r\r"[..],
            &b"id: 1\r\ndata: a\r\rdata: b\n\r\n"[..],
        ] {
            let events = same_at_every_split(input);
            assert_eq!(events, vec![msg("a", Some("1")), msg("b", Some("1"))], "{input:?}");
        }
    }

    #[test]
    fn multi_line_data_joins_with_newlines() {
        let events = same_at_every_split(b"data: one\ndata:two\ndata\ndata:  three\n\n");
        assert_eq!(events, vec![msg("one\ntwo\n\n three", None)]);
    }

    #[test]
    fn comments_event_types_and_unknown_fields() {
        let events = same_at_every_split(b": hello\nevent: tick\nfoo: bar\ndata: x\n\ndata: y\n\n");
        assert_eq!(events[0], SseEvent { event: "tick".into(), data: "x".into(), id: None });
        assert_eq!(events[1], msg("y", None), "the type resets after each event");
    }

    #[test]
    fn empty_data_is_not_dispatched_and_id_persists() {
        let events = same_at_every_split(b"id: 7\n\nevent: x\n\ndata: z\n\nid\ndata: w\n\n");
        assert_eq!(events, vec![msg("z", Some("7")), msg("w", Some(""))]);
    }

    #[test]
    fn bad_retry_and_nul_id_are_ignored() {
        let (_, p) = all_at_once(b"retry: 12a\nretry: -5\nid: a\0b\ndata: q\n\n");
        assert_eq!(p.retry(), None);
        assert_eq!(p.last_event_id(), None);
        let (_, p) = all_at_once(b"retry:250\n");
        assert_eq!(p.retry(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn leading_bom_is_skipped_once() {
        let events = same_at_every_split(b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n");
        assert_eq!(events, vec![msg("a", None)], "a BOM in the middle makes an unknown field");
        // A stream that starts with part of a BOM-like prefix but is not one.
        assert_eq!(same_at_every_split(b"\xEFdata: c\n\n").len(), 0);
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        let (events, _) = all_at_once(b"data: half");
        assert!(events.is_empty());
    }

    #[test]
    fn over_long_lines_are_cut() {
        let mut input = b"data: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 2));
        input.extend_from_slice(b"\n\n");
        let (events, _) = all_at_once(&input);
        assert_eq!(events[0].data.len(), MAX_LINE - "data: ".len());
    }
}

//! The measured counters: one table per transport, in total and per page session.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::transport::Transport;

/// How many page sessions are remembered; the oldest is forgotten past this, so a client that
/// invents session ids cannot grow the server's memory.
pub const MAX_SESSIONS: usize = 4096;
/// Longest accepted session id.
pub const MAX_SESSION_ID_LEN: usize = 64;

/// Counters of one transport.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub open_connections: AtomicI64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub payload_bytes_out: AtomicU64,
    pub events: AtomicU64,
    pub not_modified: AtomicU64,
}

/// A point-in-time copy of `Counters`, as `/api/stats` reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CountersReport {
    pub requests: u64,
    pub open_connections: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub payload_bytes_out: u64,
    pub events: u64,
    pub not_modified: u64,
}

impl Counters {
    pub fn report(&self) -> CountersReport {
        CountersReport {
            requests: self.requests.load(Relaxed),
            open_connections: self.open_connections.load(Relaxed).max(0) as u64,
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            payload_bytes_out: self.payload_bytes_out.load(Relaxed),
            events: self.events.load(Relaxed),
            not_modified: self.not_modified.load(Relaxed),
        }
    }
}

/// One `Counters` per transport.
#[derive(Debug, Default)]
pub struct TransportTable([Counters; Transport::ALL.len()]);

impl TransportTable {
    pub fn get(&self, transport: Transport) -> &Counters {
        &self.0[transport.index()]
    }
}

impl Serialize for TransportTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(Transport::ALL.len()))?;
        for t in Transport::ALL {
            map.serialize_entry(t.name(), &self.get(t).report())?;
        }
        map.end()
    }
}

/// A validated page session id: 1 to 64 of `A-Z a-z 0-9 - _ .`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(raw: &str) -> Option<SessionId> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_SESSION_ID_LEN
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        ok.then(|| SessionId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// All counters of this server process.
#[derive(Debug)]
pub struct WireStats {
    started: Instant,
    total: TransportTable,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
    sessions: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    tables: HashMap<SessionId, Arc<TransportTable>>,
    order: VecDeque<SessionId>,
}

impl Default for WireStats {
    fn default() -> Self {
        WireStats {
            started: Instant::now(),
            total: TransportTable::default(),
            connections_open: AtomicI64::new(0),
            connections_accepted: AtomicU64::new(0),
            sessions: Mutex::new(Sessions::default()),
        }
    }
}

impl WireStats {
    pub fn total(&self) -> &TransportTable {
        &self.total
    }

    pub fn uptime_seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The table of a session, made on first use.
    pub fn session(&self, id: &SessionId) -> Arc<TransportTable> {
        // A std Mutex: held for a map look-up only, never across an await.
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = sessions.tables.get(id) {
            return table.clone();
        }
        if sessions.order.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.order.pop_front()
        {
            sessions.tables.remove(&oldest);
        }
        let table = Arc::new(TransportTable::default());
        sessions.tables.insert(id.clone(), table.clone());
        sessions.order.push_back(id.clone());
        table
    }

    /// The table of a session if it has been seen.
    pub fn find_session(&self, id: &SessionId) -> Option<Arc<TransportTable>> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.tables.get(id).cloned()
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_accepted.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Relaxed).max(0) as u64
    }

    pub fn connections_accepted(&self) -> u64 {
        self.connections_accepted.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_validated() {
        assert!(SessionId::parse("abc123-poll").is_some());
        assert!(SessionId::parse("a.b_c").is_some());
        assert!(SessionId::parse("").is_none());
        assert!(SessionId::parse("has space").is_none());
        assert!(SessionId::parse("ünï").is_none());
        assert!(SessionId::parse(&"x".repeat(MAX_SESSION_ID_LEN)).is_some());
        assert!(SessionId::parse(&"x".repeat(MAX_SESSION_ID_LEN + 1)).is_none());
    }

    #[test]
    fn sessions_are_bounded_oldest_first() {
        let stats = WireStats::default();
        let first = SessionId::parse("s0").unwrap();
        stats.session(&first).get(Transport::Poll).requests.fetch_add(1, Relaxed);
        for i in 1..=MAX_SESSIONS {
            stats.session(&SessionId::parse(&format!("s{i}")).unwrap());
        }
        assert!(stats.find_session(&first).is_none());
        assert!(stats.find_session(&SessionId::parse("s1").unwrap()).is_some());
    }

    #[test]
    fn table_serialises_every_transport_in_order() {
        let table = TransportTable::default();
        table.get(Transport::Sse).events.fetch_add(3, Relaxed);
        let json = serde_json::to_value(&table).unwrap();
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 7);
        assert_eq!(json["sse"]["events"], 3);
    }
}

//! The shared count as Redis holds it, and the atomic scripts that change it.
//!
//! - `<prefix>:snapshot`: the current Snapshot, as the JSON every client receives.
//! - `<prefix>:changes`: channel on which every new Snapshot's JSON is published.
//! - `<prefix>:leader`: the lease, holding the leader's instance name, with an expiry.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{RedisError, Script};

use crate::snapshot::Snapshot;

/// Commits `ARGV[2]` (a Snapshot's JSON, id `ARGV[3]`) if `ARGV[1]` still holds the lease and the
/// id follows the stored one. 1: committed and published; 0: not the leader; -1: the stored
/// Snapshot is not the one this follows (the caller resynchronises).
static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        local stored = redis.call('GET', KEYS[2])
        if stored and cjson.decode(stored).id + 1 ~= tonumber(ARGV[3]) then return -1 end
        redis.call('SET', KEYS[2], ARGV[2])
        redis.call('PUBLISH', ARGV[4], ARGV[2])
        return 1
        ",
    )
});

/// Writes `ARGV[1]` (a Snapshot's JSON, id `ARGV[2]`) unless the stored Snapshot is as new or
/// newer, publishing it when written; returns whichever is stored afterwards.
static RESTORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local stored = redis.call('GET', KEYS[1])
        if stored and cjson.decode(stored).id >= tonumber(ARGV[2]) then return stored end
        redis.call('SET', KEYS[1], ARGV[1])
        redis.call('PUBLISH', ARGV[3], ARGV[1])
        return ARGV[1]
        ",
    )
});

/// Extends the lease by `ARGV[2]` ms if `ARGV[1]` holds it; 1 if it did, 0 if not.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        ",
    )
});

/// Gives the lease up if `ARGV[1]` holds it, so a successor need not wait for it to expire.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        ",
    )
});

/// What became of a commit.
#[derive(Debug, PartialEq, Eq)]
pub enum Commit {
    Committed,
    NotLeader,
    /// The stored Snapshot is not the one the commit follows.
    Stale,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
    #[error("the Snapshot stored in Redis is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
}

/// This instance's handle on the shared data; cheap to clone.
#[derive(Clone)]
pub struct Store {
    connection: ConnectionManager,
    /// This instance's name in the lease.
    instance: String,
    snapshot_key: String,
    leader_key: String,
    channel: String,
}

impl Store {
    pub fn new(connection: ConnectionManager, prefix: &str, instance: String) -> Self {
        Store {
            connection,
            instance,
            snapshot_key: format!("{prefix}:snapshot"),
            leader_key: format!("{prefix}:leader"),
            channel: format!("{prefix}:changes"),
        }
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Makes Redis hold `candidate` unless it holds a newer Snapshot; returns what it holds.
    pub async fn restore(&self, candidate: &Snapshot) -> Result<Snapshot, StoreError> {
        let json = serde_json::to_string(candidate)?;
        let stored: String = RESTORE
            .key(&self.snapshot_key)
            .arg(json)
            .arg(candidate.id)
            .arg(&self.channel)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(serde_json::from_str(&stored)?)
    }

    /// Commits `next`, the successor of the stored Snapshot, if this instance leads.
    pub async fn commit(&self, next: &Snapshot) -> Result<Commit, StoreError> {
        let json = serde_json::to_string(next)?;
        let outcome: i64 = COMMIT
            .key(&self.leader_key)
            .key(&self.snapshot_key)
            .arg(&self.instance)
            .arg(json)
            .arg(next.id)
            .arg(&self.channel)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(match outcome {
            1 => Commit::Committed,
            0 => Commit::NotLeader,
            _ => Commit::Stale,
        })
    }

    /// Takes the lease if nobody holds it. True when this instance now leads.
    pub async fn acquire(&self, ttl: Duration) -> Result<bool, StoreError> {
        let reply: Option<String> = ::redis::cmd("SET")
            .arg(&self.leader_key)
            .arg(&self.instance)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.connection.clone())
            .await?;
        Ok(reply.is_some())
    }

    /// Extends the lease this instance holds. False when it no longer holds it.
    pub async fn renew(&self, ttl: Duration) -> Result<bool, StoreError> {
        let renewed: i64 = RENEW
            .key(&self.leader_key)
            .arg(&self.instance)
            .arg(millis(ttl))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up, if this instance holds it.
    pub async fn release(&self) -> Result<(), StoreError> {
        let _: i64 = RELEASE
            .key(&self.leader_key)
            .arg(&self.instance)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

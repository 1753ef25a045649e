//! Scale-out through Redis, tested with real processes: a `redis-server` of our own on a free
//! port, and several `pulse serve --redis` instances (the built binary), killed for real.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use futures_util::{Stream, StreamExt};
use pulse::snapshot::Snapshot;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::helpers::{DEADLINE, eventually, sse_events, within};

/// Fast enough that a test sees dozens of changes in a few seconds.
const TICK: &str = "100ms";
/// Short, so a dead leader is replaced within about a second and a half.
const LEASE: &str = "1s";

/// A `redis-server` on 127.0.0.1 with no persistence, killed when dropped.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    async fn start() -> Self {
        let port = free_port();
        let mut server = RedisServer { port, child: None };
        server.restart().await;
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port, empty, and waits until it accepts connections.
    async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): the Redis tests need it on PATH; \
                     install Debian's package with `apt-get install redis-server`"
                )
            });
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        eventually("redis-server to accept connections", || async move {
            tokio::net::TcpStream::connect(addr).await.ok()
        })
        .await;
    }

    /// Kills it at once (SIGKILL): no goodbye to the clients.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.expect("kill redis-server");
        }
    }
}

/// One `pulse serve --redis` process, killed when dropped.
struct Instance {
    addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Instance {
    async fn start(redis_url: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(["serve", "--addr", "127.0.0.1:0", "--redis", redis_url])
            .args(["--tick", TICK, "--redis-lease", LEASE])
            .env("RUST_LOG", "pulse=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the pulse binary");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, addr) = oneshot::channel();
        let mut tx = Some(tx);
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            loop {
                let line = tokio::select! {
                    Ok(Some(line)) = stdout.next_line() => line,
                    Ok(Some(line)) = stderr.next_line() => line,
                    else => return,
                };
                if let Some(addr) = serving_addr(&line)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
            }
        });
        let addr = within(DEADLINE, "pulse to start serving", addr).await.expect("pulse exited");
        Instance { addr, child, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `/healthz`: its status code and body.
    async fn health(&self) -> (u16, serde_json::Value) {
        let response = client().get(self.url("/healthz")).send().await.expect("GET /healthz");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON health"))
    }

    async fn is_leader(&self) -> bool {
        self.health().await.1["source"]["role"] == "leader"
    }

    async fn count(&self) -> Snapshot {
        let response = client().get(self.url("/api/count")).send().await.expect("GET /api/count");
        assert_eq!(response.status(), 200);
        response.json().await.expect("a Snapshot")
    }

    /// Its SSE stream, resuming after `last_event_id` when given.
    async fn stream(
        &self,
        last_event_id: Option<u64>,
    ) -> impl Stream<Item = Snapshot> + Unpin + use<> {
        let mut request = client().get(self.url("/api/stream"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("GET /api/stream");
        assert_eq!(response.status(), 200);
        let events = sse_events(response);
        Box::pin(events.map(|e| serde_json::from_str(&e.data).expect("a Snapshot")))
    }

    /// Kills the process at once (SIGKILL): it cannot give its lease up.
    async fn kill(&mut self) {
        self.child.kill().await.expect("kill pulse");
    }

    /// Asks the process to stop (SIGTERM) and waits until it has exited.
    async fn terminate(&mut self) {
        let pid = self.child.id().expect("pulse is running") as libc::pid_t;
        // SAFETY: kill(2) only sends a signal to the child we started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = within(DEADLINE, "pulse to exit", self.child.wait()).await.unwrap();
        assert!(status.success(), "pulse exited with {status}");
    }

    fn assert_never_panicked(&self) {
        let log = self.log.lock().unwrap();
        assert!(!log.contains("panicked"), "instance {} panicked:\n{log}", self.addr);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// The address in pulse's "pulse is serving http://ADDR" line.
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split_once("pulse is serving http://")?.1;
    rest.split_whitespace().next()?.parse().ok()
}

async fn start_cluster(redis: &RedisServer, n: usize) -> Vec<Instance> {
    let mut instances = Vec::new();
    for _ in 0..n {
        instances.push(Instance::start(&redis.url()).await);
    }
    for instance in &instances {
        eventually("every instance to be in sync with Redis", || async {
            (instance.health().await.0 == 200).then_some(())
        })
        .await;
    }
    instances
}

/// The index of the one instance that leads, once exactly one does.
async fn the_leader(instances: &[Instance]) -> usize {
    eventually("exactly one leader", || async {
        let mut leaders = Vec::new();
        for (i, instance) in instances.iter().enumerate() {
            if instance.is_leader().await {
                leaders.push(i);
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
}

/// Reads `streams` in parallel until each has passed `changes` changes after the newest first
/// event among them; returns each stream's (id, count) over that common window.
async fn common_window(
    streams: &mut [impl Stream<Item = Snapshot> + Unpin],
    changes: u64,
) -> Vec<Vec<(u64, u32)>> {
    let mut firsts = Vec::new();
    for stream in streams.iter_mut() {
        firsts.push(next(stream).await);
    }
    let from = firsts.iter().map(|s| s.id).max().unwrap();
    let to = from + changes;
    let mut windows = Vec::new();
    for (stream, first) in streams.iter_mut().zip(firsts) {
        let mut seen = vec![first];
        while seen.last().unwrap().id < to {
            seen.push(next(stream).await);
        }
        let window = seen.iter().filter(|s| (from..=to).contains(&s.id)).map(|s| (s.id, s.count));
        windows.push(window.collect());
    }
    windows
}

async fn next(stream: &mut (impl Stream<Item = Snapshot> + Unpin)) -> Snapshot {
    within(DEADLINE, "an SSE event", stream.next()).await.expect("the stream ended")
}

fn assert_consecutive(ids: impl IntoIterator<Item = u64>) {
    let ids: Vec<u64> = ids.into_iter().collect();
    for pair in ids.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "ids must grow by exactly one: {ids:?}");
    }
}

#[tokio::test]
async fn three_instances_stream_identical_sequences() {
    let redis = RedisServer::start().await;
    let instances = start_cluster(&redis, 3).await;
    the_leader(&instances).await;

    let mut streams = Vec::new();
    for instance in &instances {
        streams.push(instance.stream(None).await);
    }
    let windows = common_window(&mut streams, 20).await;
    assert_consecutive(windows[0].iter().map(|(id, _)| *id));
    assert_eq!(windows[0].len(), 21);
    assert_eq!(windows[0], windows[1], "instances 0 and 1 disagree");
    assert_eq!(windows[0], windows[2], "instances 0 and 2 disagree");
    // Polling answers from each instance's copy, which is the same.
    let counts = [instances[0].count().await, instances[1].count().await];
    assert!(counts[0].id.abs_diff(counts[1].id) <= 1, "{counts:?}");
    instances.iter().for_each(Instance::assert_never_panicked);
}

#[tokio::test]
async fn killing_the_leader_hands_over_and_ids_keep_growing() {
    let redis = RedisServer::start().await;
    let mut instances = start_cluster(&redis, 3).await;
    let leader = the_leader(&instances).await;
    let watcher = (leader + 1) % instances.len();
    let mut stream = instances[watcher].stream(None).await;
    let mut seen = vec![next(&mut stream).await, next(&mut stream).await];

    instances[leader].kill().await;
    let killed = Instant::now();
    let last_before = instances[watcher].count().await.id;
    // The next change can only come from a new leader.
    loop {
        let snapshot = next(&mut stream).await;
        let id = snapshot.id;
        seen.push(snapshot);
        if id > last_before {
            break;
        }
    }
    let handover = killed.elapsed();
    let dead = instances.remove(leader);
    let new_leader = the_leader(&instances).await;
    eprintln!("handover: first change from the new leader {handover:?} after the kill");
    for _ in 0..5 {
        seen.push(next(&mut stream).await);
    }
    assert_consecutive(seen.iter().map(|s| s.id));
    let counts = [instances[0].count().await, instances[1].count().await];
    assert!(counts[0].id.abs_diff(counts[1].id) <= 1, "{counts:?}");
    assert!(instances[new_leader].is_leader().await);
    instances.iter().for_each(Instance::assert_never_panicked);
    drop(dead);
}

#[tokio::test]
async fn a_leader_that_shuts_down_gives_its_lease_up_at_once() {
    let redis = RedisServer::start().await;
    let mut instances = start_cluster(&redis, 2).await;
    let leader = the_leader(&instances).await;
    let name = instances[leader].health().await.1["source"]["instance"].clone();
    instances[leader].terminate().await;

    // Without the release the key would still name the old leader for up to a lease (1 s).
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let holder: Option<String> =
        ::redis::cmd("GET").arg("pulse:leader").query_async(&mut connection).await.unwrap();
    assert_ne!(holder.as_deref(), name.as_str(), "the lease outlived its leader");
    let survivor = &instances[1 - leader];
    eventually("the other instance to lead", || async { survivor.is_leader().await.then_some(()) })
        .await;
    instances[leader].assert_never_panicked();
    let log = instances[leader].log.lock().unwrap().clone();
    assert!(log.contains("gave up the leader lease"), "{log}");
}

#[tokio::test]
async fn redis_down_then_back_recovers_every_instance() {
    let mut redis = RedisServer::start().await;
    let instances = start_cluster(&redis, 3).await;
    the_leader(&instances).await;
    // Some history first, so a Redis that comes back empty must not restart the ids at 1.
    for instance in &instances {
        eventually("a few changes", || async { (instance.count().await.id >= 5).then_some(()) })
            .await;
    }
    let mut before = Vec::new();
    for instance in &instances {
        before.push(instance.count().await);
    }

    redis.kill().await;
    let killed = Instant::now();
    for instance in &instances {
        let (status, body) = eventually("every instance to report the source degraded", || async {
            let health = instance.health().await;
            (health.0 == 503).then_some(health)
        })
        .await;
        assert_eq!(status, 503);
        assert_eq!(body["status"], "degraded");
        assert_eq!(body["source"]["kind"], "redis");
        assert_eq!(body["source"]["healthy"], false);
        assert!(body["source"]["detail"].as_str().unwrap().contains("Redis"), "{body}");
    }
    eprintln!("degraded everywhere {:?} after Redis was killed", killed.elapsed());
    // Still serving the last known Snapshot, by polling and by streaming.
    let mut during = Vec::new();
    for instance in &instances {
        let snapshot = instance.count().await;
        let stats: serde_json::Value =
            client().get(instance.url("/api/stats")).send().await.unwrap().json().await.unwrap();
        assert_eq!(stats["source"]["healthy"], false);
        let mut stream = instance.stream(None).await;
        assert_eq!(next(&mut stream).await, snapshot);
        during.push(snapshot);
    }
    let newest_during = during.iter().map(|s| s.id).max().unwrap();
    assert!(newest_during >= before.iter().map(|s| s.id).max().unwrap());

    // Redis comes back empty (no persistence): the instances write the count back and go on.
    redis.restart().await;
    let restarted = Instant::now();
    for instance in &instances {
        eventually("every instance to be healthy again", || async {
            (instance.health().await.0 == 200).then_some(())
        })
        .await;
    }
    eprintln!("healthy everywhere {:?} after Redis restarted", restarted.elapsed());
    the_leader(&instances).await;
    let mut streams = Vec::new();
    for instance in &instances {
        streams.push(instance.stream(None).await);
    }
    let windows = common_window(&mut streams, 10).await;
    // The window starts at the current Snapshot, which may still be the last one from before.
    assert!(windows[0][0].0 >= newest_during, "ids went backwards: {windows:?}");
    assert_consecutive(windows[0].iter().map(|(id, _)| *id));
    assert_eq!(windows[0], windows[1]);
    assert_eq!(windows[0], windows[2]);
    instances.iter().for_each(Instance::assert_never_panicked);
}

#[tokio::test]
async fn an_sse_client_moved_to_another_instance_resumes_without_a_gap() {
    let redis = RedisServer::start().await;
    let instances = start_cluster(&redis, 3).await;
    the_leader(&instances).await;
    // An observer that sees every change, to check the moved client against.
    let mut observer = instances[2].stream(None).await;

    let mut first = instances[0].stream(None).await;
    let mut last = next(&mut first).await;
    for _ in 0..3 {
        last = next(&mut first).await;
    }
    drop(first);
    let reconnected = Utc::now();
    let mut moved = instances[1].stream(Some(last.id)).await;
    let mut resumed = Vec::new();
    for _ in 0..5 {
        resumed.push(next(&mut moved).await);
    }

    // Nothing repeated, nothing skipped after the current Snapshot: the first event is either
    // the very next change or the Snapshot current on reconnecting (changes while away).
    let head = &resumed[0];
    assert!(head.id > last.id, "resent or went back: {last:?} then {head:?}");
    assert!(
        head.id == last.id + 1 || head.timestamp <= reconnected,
        "skipped a change made after reconnecting: {last:?} then {head:?}"
    );
    assert_consecutive(resumed.iter().map(|s| s.id));
    let mut observed = Vec::new();
    while observed.last().is_none_or(|s: &Snapshot| s.id < resumed[4].id) {
        observed.push(next(&mut observer).await);
    }
    for snapshot in &resumed {
        assert!(observed.contains(snapshot), "{snapshot:?} differs from the other instances");
    }

    // A client that was away longer gets the current Snapshot at once, then every change.
    let mut late = instances[1].stream(Some(1)).await;
    let current = next(&mut late).await;
    assert!(current.id >= resumed[4].id);
    instances.iter().for_each(Instance::assert_never_panicked);
}

#[test]
fn the_serving_line_gives_the_address() {
    let line = "2026-12-04T20:22:37Z  INFO pulse::server: pulse is serving http://127.0.0.1:18081 (open it in a browser) max_connections=1";
    assert_eq!(serving_addr(line), Some("127.0.0.1:18081".parse().unwrap()));
}

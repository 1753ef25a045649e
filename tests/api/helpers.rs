//! Spawning the real server on a free port, and small waits with deadlines.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::{Stream, StreamExt};
use pulse::hub::Hub;
use pulse::snapshot::Snapshot;
use pulse::source::walk::WalkParams;
use pulse::wire::WireStats;
use pulse::{Config, Server};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A generous bound for things that should happen in milliseconds; only a hang reaches it.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A config whose count changes every few tens of milliseconds, reproducibly.
pub fn fast_config() -> Config {
    Config {
        walk: WalkParams {
            tick: Duration::from_millis(10)..=Duration::from_millis(30),
            ..WalkParams::default()
        },
        seed: Some(7),
        ..Config::default()
    }
}

/// A config whose count never changes by itself: the test publishes every change.
pub fn quiet_config() -> Config {
    Config {
        walk: WalkParams {
            tick: Duration::from_secs(3600)..=Duration::from_secs(3600),
            ..WalkParams::default()
        },
        seed: Some(7),
        ..Config::default()
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub hub: Hub,
    pub stats: Arc<WireStats>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(fast_config()).await
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    init_test_log();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let server = Server::new(config);
    let (hub, stats) = (server.hub().clone(), server.stats().clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    TestApp { addr, hub, stats, client, stop: Some(stop), server: Some(handle) }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request failed")
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        self.get(path).await.json().await.expect("JSON body")
    }

    /// Makes the count `count` now, as a source would.
    pub fn publish(&self, count: u32) -> Snapshot {
        let next = self.hub.current().snapshot.next(count, Utc::now());
        assert!(self.hub.publish(next.clone()));
        next
    }

    /// Asks the server to stop and returns how long it took to finish.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        let server = self.server.take().unwrap();
        within(DEADLINE, "the server to stop", server).await.unwrap().unwrap();
        started.elapsed()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Awaits `future`, failing the test with `what` if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Polls `check` until it returns `Some`, failing the test after `DEADLINE`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(DEADLINE, what, async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await; // wait-ok: poll interval of a deadline-bounded wait
        }
    })
    .await
}

/// The Server-Sent Events of a response, parsed by a real SSE client parser.
pub fn sse_events(
    response: reqwest::Response,
) -> impl Stream<Item = eventsource_stream::Event> + Unpin {
    use eventsource_stream::Eventsource;
    Box::pin(response.bytes_stream().eventsource().map(|e| e.expect("valid SSE")))
}

/// The next SSE event's Snapshot, within the deadline.
pub async fn next_snapshot(
    events: &mut (impl Stream<Item = eventsource_stream::Event> + Unpin),
) -> (eventsource_stream::Event, Snapshot) {
    let event = within(DEADLINE, "an SSE event", events.next()).await.expect("stream ended");
    let snapshot = serde_json::from_str(&event.data).expect("event data is a Snapshot");
    (event, snapshot)
}

fn init_test_log() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt().with_env_filter("pulse=debug").with_test_writer().init();
        }
    });
}

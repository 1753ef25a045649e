//! `serve`: the accept loop. Every connection is wrapped in a byte-counting `MeteredIo`, offered
//! to the fast path (plain polls and SSE streams), and otherwise served by hyper with upgrades
//! (for WebSocket); all of it shuts down gracefully on request.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::config::Config;
use crate::fastpath::heads::Heads;
use crate::fastpath::rewind::Rewind;
use crate::fastpath::{FastPath, Served};
use crate::http::error::ApiError;
use crate::http::{AppState, app};
use crate::hub::Hub;
use crate::source::Source;
use crate::source::walk::Walk;
use crate::transport::Transport;
use crate::wire::{ConnMeter, MeteredBody, MeteredIo, WireStats};

/// Serves pulse on `listener` until `shutdown` resolves, then ends every open stream and
/// returns once the connections have closed (or `config.shutdown_grace` has passed).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    Server::new(config).run(listener, shutdown).await
}

/// A server that is built but not yet running: its hub and counters can be reached before and
/// while it runs, so an embedding program (or a test) can publish Snapshots and read counters.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    source: Source,
    seed: u64,
}

impl Server {
    pub fn new(config: Config) -> Self {
        let seed = config.seed.unwrap_or_else(rand::random);
        let walk = Walk::new(config.walk.clone(), config.start, seed);
        let source = Source::new(&config, walk);
        let state = AppState {
            hub: source.hub().clone(),
            stats: Arc::new(WireStats::default()),
            config: Arc::new(config),
            source: source.health(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        Server { state, source, seed }
    }

    pub fn hub(&self) -> &Hub {
        &self.state.hub
    }

    pub fn stats(&self) -> &Arc<WireStats> {
        &self.state.stats
    }

    /// Runs the source and the accept loop until `shutdown` resolves; see [`serve`].
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Server { state, source, seed } = self;
        let addr = listener.local_addr()?;
        let (config, stats, stop, tasks) = (
            state.config.clone(),
            state.stats.clone(),
            state.shutdown.clone(),
            state.tasks.clone(),
        );
        // Connections wait in the listener's backlog until the hub holds a count to serve.
        source.start(&tasks, stop.clone()).await;
        let router = app(state.clone());
        let fast = match config.fast_path {
            true => Heads::learn(&router, &config.cors_origins)
                .await
                .map(|heads| Arc::new(FastPath::new(&state, heads))),
            false => None,
        };
        drop(state);
        let max_connections = config.max_connections;
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.header_timeout)
            .max_headers(MAX_HEADERS)
            .max_header_size(MAX_HEADER_BYTES);
        let mut refusing = http.clone();
        refusing.keep_alive(false);
        let http = Arc::new(http);

        tracing::info!(
            seed,
            max_connections,
            fast_path = fast.is_some(),
            "pulse is serving http://{addr} (open it in a browser)"
        );
        tokio::pin!(shutdown);
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors or memory: wait for connections to close rather
                        // than spin. Existing clients are not affected.
                        tracing::warn!(error = %e, "accept failed; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                        continue;
                    }
                },
            };
            backoff = ACCEPT_BACKOFF_MIN;
            let _ = stream.set_nodelay(true);
            let full = stats.connections_open() >= max_connections as u64;
            let meter = ConnMeter::new(stats.clone());
            let io = MeteredIo::new(stream, meter.clone());
            let stop = stop.clone();
            if full {
                // Past the limit a new client is told to come back later, on a connection that
                // closes after one answer; the clients already served are not touched.
                let connection = refusing.serve_connection(TokioIo::new(io), refuse(meter));
                tasks.spawn(async move {
                    tokio::select! {
                        _ = connection => {}
                        _ = stop.cancelled() => {}
                    }
                });
                continue;
            }
            let (fast, http, router) = (fast.clone(), http.clone(), router.clone());
            tasks.spawn(async move {
                let io = match &fast {
                    Some(fast) => match fast.serve(io).await {
                        Served::Done => return,
                        Served::HandOff(io) => io,
                    },
                    None => Rewind::new(io, Vec::new()),
                };
                // Boxed: a connection that stays on the fast path does not carry hyper's state.
                let mut connection = Box::pin(
                    http.serve_connection(TokioIo::new(io), route(router, meter)).with_upgrades(),
                );
                let result = tokio::select! {
                    result = connection.as_mut() => result,
                    _ = stop.cancelled() => {
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }

        drop(listener);
        tracing::info!("stopping: ending open streams");
        stop.cancel();
        tasks.close();
        if tokio::time::timeout(config.shutdown_grace, tasks.wait()).await.is_err() {
            tracing::warn!(
                remaining = tasks.len(),
                "connections still open after {:?}; leaving them",
                config.shutdown_grace
            );
        }
        Ok(())
    }
}

/// Hands each request of a connection to the router, with the connection's meter attached.
fn route(
    router: Router,
    meter: Arc<ConnMeter>,
) -> impl Service<Request<Incoming>, Response = Response<MeteredBody>, Error = Infallible, Future: Send>
+ Clone {
    hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(meter.clone());
        let (router, meter) = (router.clone(), meter.clone());
        async move {
            let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
            Ok(if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                // The connection now belongs to the WebSocket: its reads stay with it.
                response.map(MeteredBody::upgrade)
            } else {
                response.map(|body| MeteredBody::new(body, meter))
            })
        }
    })
}

/// Answers every request with 503 and `Retry-After`: the server is at `--max-connections`.
fn refuse(
    meter: Arc<ConnMeter>,
) -> impl Service<Request<Incoming>, Response = Response<MeteredBody>, Error = Infallible, Future: Send>
{
    hyper::service::service_fn(move |request: Request<Incoming>| {
        meter.begin_request(Transport::of(&request), None);
        let response = ApiError::unavailable(
            "the server is at its connection limit; try again shortly",
            REFUSED_RETRY_AFTER_SECS,
        )
        .into_response();
        std::future::ready(Ok(response.map(|body| MeteredBody::new(body, meter.clone()))))
    })
}

/// Most request headers a client may send (431 past it).
pub const MAX_HEADERS: usize = 64;
/// Largest request head (request line and headers) a client may send (431 past it).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// What a client refused at the connection limit is told to wait, in seconds.
const REFUSED_RETRY_AFTER_SECS: u32 = 1;
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

//! `serve`: the accept loop. Every connection is wrapped in a byte-counting `MeteredIo` before
//! hyper sees it, served with upgrades (for WebSocket), and shut down gracefully on request.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::Config;
use crate::http::{AppState, app};
use crate::hub::Hub;
use crate::snapshot::Snapshot;
use crate::source::walk::Walk;
use crate::source::{SourceHealth, simulator};
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
    walk: Walk,
    seed: u64,
}

impl Server {
    pub fn new(config: Config) -> Self {
        let seed = config.seed.unwrap_or_else(rand::random);
        let walk = Walk::new(config.walk.clone(), config.start, seed);
        let hub = Hub::new(Snapshot::initial(walk.count(), chrono::Utc::now()));
        let (_, health) =
            watch::channel(SourceHealth { kind: "simulator", healthy: true, detail: None });
        let state = AppState {
            hub,
            stats: Arc::new(WireStats::default()),
            config: Arc::new(config),
            source: health,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        Server { state, walk, seed }
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
        let Server { state, walk, seed } = self;
        let addr = listener.local_addr()?;
        let (config, stats, stop, tasks) = (
            state.config.clone(),
            state.stats.clone(),
            state.shutdown.clone(),
            state.tasks.clone(),
        );
        tasks.spawn(simulator::run(walk, state.hub.clone(), stop.clone()));
        let router = app(state);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new());

        tracing::info!(seed, "pulse is serving http://{addr} (open it in a browser)");
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
            let meter = ConnMeter::new(stats.clone());
            let io = TokioIo::new(MeteredIo::new(stream, meter.clone()));
            let service = hyper::service::service_fn({
                let router = router.clone();
                move |mut request: Request<Incoming>| {
                    request.extensions_mut().insert(meter.clone());
                    let (router, meter) = (router.clone(), meter.clone());
                    async move {
                        let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
                        Ok::<_, Infallible>(
                            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                                response.map(MeteredBody::upgrade)
                            } else {
                                response.map(|body| MeteredBody::new(body, meter))
                            },
                        )
                    }
                }
            });
            let (builder, stop) = (builder.clone(), stop.clone());
            tasks.spawn(async move {
                let connection = builder.serve_connection_with_upgrades(io, service);
                tokio::pin!(connection);
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

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

//! `pulse bench`: the client side of every transport, thousands at once, measured and reported
//! side by side.
//!
//! - [`clients`]: one client per transport, speaking the real protocol on a raw socket.
//! - [`sse_parser`]: the incremental Server-Sent Events parser the SSE client reads with.
//! - [`http1`]: the minimal HTTP/1.1 client connection the clients share.
//! - [`measure`]: counters, the latency histogram, and what a receipt means.
//! - [`swarm`]: the clients of one process: ramped up, held, stopped.
//! - [`workers`]: large runs spread over worker processes and loopback source addresses.
//! - [`limits`]: open files and ports, checked before a run.
//! - [`server`]: `--spawn`'s child server and the server's `/api/stats`.
//! - [`target`]: the server under test.
//! - [`report`]: the results, as a terminal table, JSON and HTML.

pub mod clients;
pub mod http1;
pub mod limits;
pub mod measure;
pub mod report;
pub mod server;
pub mod sse_parser;
pub mod swarm;
pub mod target;
pub mod workers;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use self::clients::Kind;
use self::measure::Counts;
use self::report::{Derived, Params, Report, Run, ServerFigures};
use self::server::{Peaks, ServerStats, SpawnedServer};
use self::swarm::SwarmSpec;
use self::target::Target;
use crate::cli::parse_duration;

/// How often `/api/stats` is sampled during a run for peak memory and connections.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

#[derive(Clone, Debug, Args)]
#[command(
    about = "Load-test every transport with many clients and report them side by side",
    long_about = "Load-test every transport with many clients and report them side by side.\n\n\
        Runs N clients of each transport (one transport after another, or all at once with \
        --together) against a pulse server and measures, per transport: connections, errors, \
        requests, bytes on the wire, updates received and missed, wasted requests, update \
        latency percentiles, and the server's CPU and memory from its /api/stats.\n\n\
        Example: pulse bench --spawn --tick 1s --clients 1000,10000 --duration 20s \
        --json bench.json --html bench.html"
)]
pub struct BenchArgs {
    /// The server to load: http://host:port[/prefix] of any server speaking pulse's HTTP
    /// contract (another pulse, a load balancer in front of several).
    #[arg(long, value_name = "URL", conflicts_with = "spawn")]
    pub target: Option<String>,

    /// Start a local `pulse serve` child for each run (fresh, so its CPU and memory belong to
    /// that run) and stop it afterwards. The default when --target is not given.
    #[arg(long)]
    pub spawn: bool,

    /// Simulation tick of the spawned server: how often the count may change.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub tick: Duration,

    /// Transports to run, comma-separated: poll (GET /api/count), etag (the same with
    /// If-None-Match), longpoll, sse, ws.
    #[arg(long, value_delimiter = ',', default_value = "poll,etag,longpoll,sse,ws")]
    pub transports: Vec<Kind>,

    /// Clients per transport; a comma-separated list runs each size in turn (a sweep) and
    /// draws cost against clients.
    #[arg(long, value_delimiter = ',', default_value = "100", value_parser = parse_clients)]
    pub clients: Vec<usize>,

    /// How long every run lasts once its last client has started.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Time between two polls of one polling client (poll, etag), with ±10 % jitter.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// How long the server may hold a long poll (`timeout=` of /api/longpoll).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub longpoll_timeout: Duration,

    /// Start clients at this rate ("500/s" or "500"); as fast as connections go through when
    /// absent.
    #[arg(long, value_name = "R/s", value_parser = parse_ramp)]
    pub ramp: Option<f64>,

    /// Run all the transports at once, N clients each, on the same changes.
    #[arg(long)]
    pub together: bool,

    /// Client processes to spread the clients over; by default one per 5 000 connections (and
    /// the bench's own process alone below that).
    #[arg(long)]
    pub workers: Option<usize>,

    /// Write every figure and the run's parameters as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report with charts to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Seed of the clients' jitter and of the spawned server's simulation, so every run sees
    /// the same sequence of changes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Show no progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_clients(text: &str) -> Result<usize, String> {
    match text.trim().replace('_', "").parse::<usize>() {
        Ok(0) => Err("the number of clients must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of clients")),
    }
}

fn parse_ramp(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches("/s");
    match number.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{text:?} is not a rate; write it as 500/s")),
    }
}

/// `pulse bench`: runs, prints the table, writes the files.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = tokio::select! {
        report = bench(&args, Some(command)) => report?,
        _ = crate::signal::shutdown() => bail!("interrupted; the spawned server and workers are stopped"),
    };
    println!("{}", report::table::render(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::html::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("HTML report written to {}", path.display());
    }
    Ok(())
}

/// Runs every size and transport `args` asks for and returns the report.
pub async fn bench(args: &BenchArgs, command: Option<String>) -> anyhow::Result<Report> {
    if args.transports.is_empty() {
        bail!("--transports is empty; choose from poll, etag, longpoll, sse, ws");
    }
    if args.clients.is_empty() || args.clients.contains(&0) {
        bail!("--clients must be at least 1");
    }
    if args.workers == Some(0) {
        bail!("--workers must be at least 1");
    }
    if args.duration.is_zero() || args.poll_interval.is_zero() || args.longpoll_timeout.is_zero() {
        bail!("--duration, --poll-interval and --longpoll-timeout must be longer than zero");
    }
    let mut transports = args.transports.clone();
    transports.dedup();
    let fd_limit = limits::raise_open_file_limit();
    let spawn = args.target.is_none();
    let fixed_target = match &args.target {
        Some(url) => {
            let target = Target::resolve(url).await.map_err(anyhow::Error::msg)?;
            match server::get(&target, "/api/count").await {
                Ok((200, _)) => {}
                Ok((status, _)) => bail!(
                    "--target {url}: GET /api/count answered HTTP {status}; is this a pulse server \
                     (or one speaking its contract)?"
                ),
                Err(e) => bail!(
                    "--target {url} is unreachable: {e:#}. Start a server (pulse serve) or use \
                     --spawn to let the bench start one"
                ),
            }
            Some(target)
        }
        None => None,
    };
    let params = Params {
        pulse_version: env!("CARGO_PKG_VERSION").into(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command,
        target: fixed_target
            .as_ref()
            .map_or("spawned pulse serve on 127.0.0.1".into(), |t| t.url.clone()),
        spawned: spawn,
        tick_ms: spawn.then_some(args.tick.as_millis() as u64),
        transports: transports.clone(),
        clients: args.clients.clone(),
        duration_s: args.duration.as_secs_f64(),
        poll_interval_s: args.poll_interval.as_secs_f64(),
        longpoll_timeout_s: args.longpoll_timeout.as_secs_f64(),
        ramp_per_s: args.ramp,
        together: args.together,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        open_file_limit: fd_limit,
        ports_per_source: limits::ports_per_source(),
    };
    let phases: Vec<Vec<Kind>> = if args.together {
        vec![transports.clone()]
    } else {
        transports.iter().map(|&k| vec![k]).collect()
    };
    // Check every size before running any, so a sweep does not fail after an hour.
    for &n in &args.clients {
        for kinds in &phases {
            let connections = (n * kinds.len()) as u64;
            let workers = worker_count(args, connections as usize);
            let addr = fixed_target.as_ref().map_or("127.0.0.1:1".parse()?, |t| t.addr);
            limits::check(connections, workers.max(1) as u64, addr, spawn, fd_limit)
                .map_err(anyhow::Error::msg)?;
        }
    }

    let mut runs = Vec::new();
    for &n in &args.clients {
        for kinds in &phases {
            let spawned = match spawn {
                true => {
                    Some(SpawnedServer::start(args.tick, Duration::from_secs(15), args.seed).await?)
                }
                false => None,
            };
            let target = match (&fixed_target, &spawned) {
                (Some(t), _) => t.clone(),
                (None, Some(s)) => Target::local(s.addr),
                (None, None) => unreachable!("either a target or a spawned server"),
            };
            let result = run_phase(args, &target, kinds, n).await;
            if let Some(s) = spawned {
                s.stop().await;
            }
            runs.extend(result?);
        }
    }
    Ok(Report { params, runs })
}

fn worker_count(args: &BenchArgs, connections: usize) -> usize {
    args.workers.unwrap_or_else(|| {
        if connections <= workers::CLIENTS_PER_WORKER {
            0 // in this process
        } else {
            connections.div_ceil(workers::CLIENTS_PER_WORKER)
        }
    })
}

/// One run: `n` clients of each of `kinds` at once against `target`.
async fn run_phase(
    args: &BenchArgs,
    target: &Target,
    kinds: &[Kind],
    n: usize,
) -> anyhow::Result<Vec<Run>> {
    let spec = SwarmSpec {
        target: target.clone(),
        groups: kinds.iter().map(|&k| (k, n)).collect(),
        source: None,
        ramp_per_sec: args.ramp,
        duration: args.duration,
        poll_interval: args.poll_interval,
        longpoll_timeout: args.longpoll_timeout,
        seed: args.seed.wrapping_add(n as u64),
    };
    let workers = worker_count(args, spec.clients());
    let names = kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join("+");
    let sources: Vec<String> = (0..workers)
        .filter_map(|w| workers::source_for(w, target).map(|ip| ip.to_string()))
        .collect();

    let ramp_time = args.ramp.map_or(0.0, |r| spec.clients() as f64 / r);
    let bar = progress_bar(args.quiet, ramp_time + args.duration.as_secs_f64());
    bar.set_prefix(format!("{names} ×{n}"));
    if bar.is_hidden() && !args.quiet {
        eprintln!("bench: {names}, {n} clients each, {} worker process(es)…", workers.max(1));
    }

    let before = ServerStats::fetch(target).await;
    let peaks = std::sync::Arc::new(std::sync::Mutex::new(Peaks::default()));
    let stop_sampling = tokio_util::sync::CancellationToken::new();
    let sampler = tokio::spawn({
        let (target, peaks, stop) = (target.clone(), peaks.clone(), stop_sampling.clone());
        async move {
            while !stop.is_cancelled() {
                if let Some(stats) = ServerStats::fetch(&target).await {
                    peaks.lock().unwrap_or_else(|e| e.into_inner()).note(&stats);
                }
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                }
            }
        }
    });

    let started = Instant::now();
    let progress = |counts: &[Counts]| {
        bar.set_position(started.elapsed().as_millis() as u64);
        let parts: Vec<String> = kinds
            .iter()
            .zip(counts)
            .map(|(k, c)| {
                format!(
                    "{k}: {} open, {} updates, {} errors",
                    c.open,
                    c.updates,
                    c.connect_errors + c.disconnects + c.http_errors
                )
            })
            .collect();
        bar.set_message(parts.join(" · "));
    };
    let results = if workers == 0 {
        swarm::run(&spec, progress).await
    } else {
        workers::run(&spec, workers, progress).await?
    };
    let elapsed = started.elapsed().as_secs_f64();
    stop_sampling.cancel();
    let _ = sampler.await;
    let after = ServerStats::fetch(target).await;
    bar.finish_and_clear();

    let peaks = *peaks.lock().unwrap_or_else(|e| e.into_inner());
    let all_updates: u64 = results.iter().map(|r| r.counts.updates).sum();
    let runs = kinds
        .iter()
        .zip(results)
        .map(|(&kind, result)| {
            let server = match (&before, &after) {
                (Some(b), Some(a)) => Some(ServerFigures {
                    cpu_seconds: (a.cpu_seconds - b.cpu_seconds).max(0.0),
                    rss_before_bytes: b.rss_bytes,
                    changes: a.snapshot_id.saturating_sub(b.snapshot_id),
                    rss_peak_bytes: peaks.rss_bytes.max(a.rss_bytes),
                    connections_peak: peaks.connections_open.saturating_sub(b.connections_open),
                    bytes_in: a.transport(kind).bytes_in.saturating_sub(b.transport(kind).bytes_in),
                    bytes_out: a
                        .transport(kind)
                        .bytes_out
                        .saturating_sub(b.transport(kind).bytes_out),
                    events: a.transport(kind).events.saturating_sub(b.transport(kind).events),
                    shared_with: if kinds.len() > 1 {
                        kinds.iter().copied().filter(|&k| k != kind).collect()
                    } else {
                        Vec::new()
                    },
                }),
                _ => None,
            };
            let derived = Derived::of(&result.counts, server.as_ref(), all_updates);
            Run {
                transport: kind,
                clients: n,
                workers: workers.max(1),
                source_addresses: sources.clone(),
                elapsed_s: elapsed,
                counts: result.counts,
                latency_ms: result.latency(),
                first_error: result.first_error.clone(),
                server,
                derived,
            }
        })
        .collect();
    Ok(runs)
}

fn progress_bar(quiet: bool, seconds: f64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some((seconds * 1000.0) as u64),
        if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} [{bar:30}] {elapsed:>4} {msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar
}

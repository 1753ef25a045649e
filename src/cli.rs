//! The command line: `pulse [serve]` and its flags, turned into a `Config`.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::source::redis::RedisSettings;
use crate::source::walk::WalkParams;

#[derive(Debug, Parser)]
#[command(
    name = "pulse",
    version,
    about = "Polling vs Server-Sent Events, measured.",
    long_about = "Polling vs Server-Sent Events, measured.\n\n\
        Serves a live \"users online\" counter over polling, conditional (ETag) polling, long \
        polling, Server-Sent Events and WebSocket, and a page that compares them with bytes \
        measured on the wire. With no command, runs `serve`: `pulse --addr 0.0.0.0:8080` is \
        `pulse serve --addr 0.0.0.0:8080`.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s flags, for when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the counter and the comparison page (the default).
    Serve(ServeArgs),
    /// Load-test every transport with many clients and report them side by side.
    Bench(crate::bench::BenchArgs),
    /// One client process of a large `bench` run (started by `bench` itself).
    #[command(hide = true)]
    BenchWorker(BenchWorkerArgs),
}

/// What `bench` tells a worker process.
#[derive(Debug, Args)]
pub struct BenchWorkerArgs {
    /// The worker's part of the run, as JSON.
    #[arg(long)]
    pub spec: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PULSE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Time between simulation ticks: a fixed duration ("200ms") or a range drawn uniformly
    /// ("2s..3s").
    #[arg(long, default_value = "2s..3s", value_parser = parse_tick)]
    pub tick: RangeInclusive<Duration>,

    /// The count the simulation starts from.
    #[arg(long, default_value_t = 50)]
    pub start: u32,

    /// Lowest count the simulation reaches.
    #[arg(long, default_value_t = 0)]
    pub min: u32,

    /// Highest count the simulation reaches.
    #[arg(long, default_value_t = 200)]
    pub max: u32,

    /// Chance that a tick moves the count (by a uniform step in -3..=+5).
    #[arg(long, default_value_t = 0.7, value_parser = parse_probability)]
    pub change_probability: f64,

    /// Seed of the simulation, for a reproducible sequence; random when absent.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Send an SSE comment and a WebSocket ping after this long without an event; it also
    /// bounds how long a vanished client stays counted as connected.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,

    /// Reconnection delay SSE clients are told to use (`retry:`).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub sse_retry: Duration,

    /// Allow browsers from this origin to call /api/* (repeat for several); any origin when
    /// not given.
    #[arg(long = "cors-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    pub cors_origins: Vec<HeaderValue>,

    /// Most connections served at once; past it new clients get 503 with Retry-After.
    /// Default: the open-file limit less 256.
    #[arg(long)]
    pub max_connections: Option<usize>,

    /// Close a connection that has not sent a whole request head within this time (slow
    /// clients, idle keep-alive connections).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Answer plain polls and SSE streams on the lean path; `--fast-path false` sends every
    /// request through hyper and the router (same answers, for comparing the two).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub fast_path: bool,

    /// Serve the page from this folder (index.html, app.js, style.css) instead of the copy built
    /// into the binary; for working on the page without rebuilding.
    #[arg(long, value_name = "DIR")]
    pub page_dir: Option<PathBuf>,

    /// Share one count with other pulse instances through Redis:
    /// redis://[USER:PASSWORD@]HOST[:PORT][/DB]. One instance at a time (the holder of a lease)
    /// runs the simulation; every instance serves its clients from its own copy.
    #[arg(long, env = "PULSE_REDIS", value_name = "URL", hide_env_values = true)]
    pub redis: Option<String>,

    /// Prefix of the keys and channel pulse uses in Redis, so several deployments can share a
    /// server.
    #[arg(
        long,
        env = "PULSE_REDIS_PREFIX",
        value_name = "PREFIX",
        default_value = RedisSettings::DEFAULT_PREFIX
    )]
    pub redis_prefix: String,

    /// Life of the leader lease in Redis: when the leader dies, another instance takes over
    /// within about 1.3 times this.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub redis_lease: Duration,
}

impl ServeArgs {
    /// The defaults of `pulse serve`, with the environment applied.
    pub fn from_env() -> Self {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            args: ServeArgs,
        }
        Defaults::parse_from(["pulse"]).args
    }

    pub fn config(&self) -> Result<Config, String> {
        if self.min > self.max {
            return Err(format!("--min {} is above --max {}", self.min, self.max));
        }
        if self.max_connections == Some(0) {
            return Err("--max-connections must be at least 1".into());
        }
        if self.header_timeout.is_zero() {
            return Err("--header-timeout must be longer than zero".into());
        }
        if let Some(dir) = &self.page_dir {
            for file in ["index.html", "app.js", "style.css"] {
                if !dir.join(file).is_file() {
                    return Err(format!("--page-dir {}: {file} is missing", dir.display()));
                }
            }
        }
        let redis = match &self.redis {
            Some(url) => Some(RedisSettings::new(url, &self.redis_prefix, self.redis_lease)?),
            None => None,
        };
        Ok(Config {
            walk: WalkParams {
                bounds: self.min..=self.max,
                change_probability: self.change_probability,
                tick: self.tick.clone(),
                ..WalkParams::default()
            },
            start: self.start,
            seed: self.seed,
            heartbeat: self.heartbeat,
            sse_retry: self.sse_retry,
            cors_origins: self.cors_origins.clone(),
            page_dir: self.page_dir.clone(),
            max_connections: self
                .max_connections
                .unwrap_or_else(crate::config::default_max_connections),
            header_timeout: self.header_timeout,
            redis,
            fast_path: self.fast_path,
            ..Config::default()
        })
    }
}

/// A duration such as `250ms`, `2s` or `1m 30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}); try 500ms or 2s"))
}

/// `200ms` (fixed) or `2s..3s` (uniform range). Zero is refused: the simulation would spin.
pub fn parse_tick(text: &str) -> Result<RangeInclusive<Duration>, String> {
    let (lo, hi) = match text.split_once("..") {
        Some((lo, hi)) => (parse_duration(lo)?, parse_duration(hi.trim_start_matches('='))?),
        None => {
            let d = parse_duration(text)?;
            (d, d)
        }
    };
    if lo.is_zero() {
        return Err("the tick must be longer than zero".into());
    }
    if lo > hi {
        return Err(format!("{text:?}: the lower end is above the upper end"));
    }
    Ok(lo..=hi)
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a probability between 0 and 1")),
    }
}

fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let ok = (text.starts_with("http://") || text.starts_with("https://")) && !text.ends_with('/');
    if !ok {
        return Err(format!(
            "{text:?} is not an origin; write it as https://example.com (scheme and host, optional port, no path)"
        ));
    }
    HeaderValue::from_str(text).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_forms() {
        let ms = Duration::from_millis;
        assert_eq!(parse_tick("200ms").unwrap(), ms(200)..=ms(200));
        assert_eq!(parse_tick("2s..3s").unwrap(), ms(2000)..=ms(3000));
        assert_eq!(parse_tick("2s..=3s").unwrap(), ms(2000)..=ms(3000));
        assert!(parse_tick("3s..2s").is_err());
        assert!(parse_tick("0s").is_err());
        assert!(parse_tick("soon").is_err());
    }

    #[test]
    fn defaults_match_the_simulation_spec() {
        let config = ServeArgs::from_env().config().unwrap();
        assert_eq!(config.walk, WalkParams::default());
        assert_eq!(config.start, 50);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse_probability("1.5").is_err());
        assert!(parse_origin("example.com").is_err());
        assert!(parse_origin("https://example.com/").is_err());
        assert!(parse_origin("https://example.com:8443").is_ok());
        let mut args = ServeArgs::from_env();
        (args.min, args.max) = (10, 5);
        assert!(args.config().unwrap_err().contains("--min"));
    }

    #[test]
    fn redis_flags_become_settings() {
        let cli = Cli::parse_from(["pulse", "--redis", "redis://127.0.0.1:6390/1"]);
        let redis = cli.serve.config().unwrap().redis.unwrap();
        assert_eq!(
            (redis.prefix.as_str(), redis.lease_ttl),
            (RedisSettings::DEFAULT_PREFIX, RedisSettings::DEFAULT_LEASE_TTL)
        );
        let cli = Cli::parse_from(["pulse", "serve", "--redis", "localhost:6379"]);
        let Some(Command::Serve(args)) = cli.command else { panic!("serve expected") };
        assert!(args.config().unwrap_err().contains("is not a Redis URL"));
        assert!(ServeArgs::from_env().config().unwrap().redis.is_none());
    }
}

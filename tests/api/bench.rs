//! `pulse bench` end to end: the built binary against a real server, checking every figure of
//! the JSON report and the charts of the HTML one.
//!
//! The server is started in this process with `pulse::serve` on 127.0.0.1:0 (a minimal stand-in
//! for the shared `spawn_app()` helper, which this branch does not have yet).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use pulse::Config;
use pulse::source::walk::WalkParams;

/// Only a hang reaches this.
const DEADLINE: Duration = Duration::from_secs(180);

/// A server whose count changes every 100 ms, reproducibly; stopped when the guard drops.
async fn spawn_server() -> (String, tokio_util::sync::DropGuard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        walk: WalkParams {
            tick: Duration::from_millis(100)..=Duration::from_millis(100),
            change_probability: 1.0,
            ..WalkParams::default()
        },
        seed: Some(7),
        ..Config::default()
    };
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move { pulse::serve(listener, config, stopped.cancelled_owned()).await });
    (url, stop.drop_guard())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pulse-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs the pulse binary with `args`, returning its stdout; fails the test on a non-zero exit.
async fn pulse(args: &[&str]) -> String {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_pulse"))
        .args(args)
        .env("RUST_LOG", "pulse=warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE, run).await.expect("bench hung").expect("run pulse");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "pulse {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

fn runs(report: &Value) -> Vec<Value> {
    report["runs"].as_array().expect("runs is an array").clone()
}

fn run_of<'a>(runs: &'a [Value], transport: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["transport"] == transport)
        .unwrap_or_else(|| panic!("no {transport} run"))
}

fn num(v: &Value, field: &str) -> f64 {
    v[field].as_f64().unwrap_or_else(|| panic!("{field} missing or not a number in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_reports_sane_figures_json_and_charts() {
    let (url, _server) = spawn_server().await;
    let (json, html) = (scratch("run.json"), scratch("run.html"));
    let table = pulse(&[
        "bench",
        "--target",
        &url,
        "--clients",
        "50",
        "--duration",
        "3s",
        "--poll-interval",
        "500ms",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ])
    .await;
    assert!(table.contains("50 clients per transport"), "{table}");
    assert!(table.contains("bytes / update"), "{table}");

    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("valid JSON");
    let params = &report["params"];
    for field in ["duration_s", "poll_interval_s", "cores", "open_file_limit", "ports_per_source"] {
        assert!(num(params, field) > 0.0, "params.{field}");
    }
    assert_eq!(params["clients"], serde_json::json!([50]));
    assert_eq!(params["target"], url.as_str());
    let runs = runs(&report);
    assert_eq!(runs.len(), 5);
    for run in &runs {
        let t = run["transport"].as_str().unwrap();
        assert_eq!(num(run, "clients"), 50.0, "{t}");
        assert_eq!(num(run, "connected"), 50.0, "{t}: every client connected");
        assert_eq!(num(run, "open_at_end"), 50.0, "{t}: and still was at the end");
        for field in ["connect_errors", "disconnects", "http_errors"] {
            assert_eq!(num(run, field), 0.0, "{t}: {field}; first error {}", run["first_error"]);
        }
        for field in ["requests", "bytes_up", "bytes_down", "updates_received"] {
            assert!(num(run, field) > 0.0, "{t}: {field}");
        }
        assert!(run["updates_missed"].is_u64() && run["wasted_requests"].is_u64(), "{t}");
        let latency = &run["latency_ms"];
        let (p50, p90, p99, max) = (
            num(latency, "p50_ms"),
            num(latency, "p90_ms"),
            num(latency, "p99_ms"),
            num(latency, "max_ms"),
        );
        assert!(num(latency, "samples") > 0.0, "{t}");
        assert!(0.0 <= p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{t}: {latency}");
        assert!(max < 10_000.0, "{t}: latency within the run: {latency}");
        let server = &run["server"];
        assert!(num(server, "cpu_seconds") > 0.0, "{t}: {server}");
        assert!(num(server, "rss_peak_bytes") >= num(server, "rss_before_bytes"), "{t}");
        assert!(num(server, "bytes_out") > 0.0 && num(server, "events") > 0.0, "{t}: {server}");
        assert!(num(server, "changes") > 0.0, "{t}: {server}");
        let derived = &run["derived"];
        for field in ["bytes_per_update", "server_cpu_us_per_update"] {
            assert!(num(derived, field) > 0.0, "{t}: derived.{field}");
        }
        assert!(derived["server_rss_kb_per_connection"].is_number(), "{t}");
    }
    // Streams send the update and nothing else; polling pays headers for every look.
    let bytes_per_update = |t| num(&run_of(&runs, t)["derived"], "bytes_per_update");
    for stream in ["sse", "ws"] {
        for poll in ["poll", "etag"] {
            assert!(
                bytes_per_update(stream) < bytes_per_update(poll),
                "{stream} {} vs {poll} {}",
                bytes_per_update(stream),
                bytes_per_update(poll)
            );
        }
    }
    // Plain polling at 500 ms on a 100 ms tick misses changes; a stream misses none.
    assert!(num(run_of(&runs, "poll"), "updates_missed") > 0.0);
    assert_eq!(num(run_of(&runs, "sse"), "updates_missed"), 0.0);

    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
    for chart in ["latency", "bytes-per-update", "server-cpu", "server-rss"] {
        assert!(html.contains(&format!("data-chart=\"{chart}\"")), "chart {chart} missing");
    }
    assert!(html.matches("<svg").count() >= 5);
    assert!(!html.contains("<script") && !html.contains("src=\"http"), "self-contained");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_and_worker_processes_with_source_addresses() {
    let json = scratch("workers.json");
    pulse(&[
        "bench",
        "--spawn",
        "--tick",
        "100ms",
        "--transports",
        "sse,etag",
        "--together",
        "--clients",
        "20",
        "--workers",
        "2",
        "--duration",
        "1s",
        "--poll-interval",
        "300ms",
        "--quiet",
        "--json",
        json.to_str().unwrap(),
    ])
    .await;
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["params"]["spawned"], true);
    assert_eq!(report["params"]["tick_ms"], 100);
    for run in runs(&report) {
        let t = run["transport"].as_str().unwrap().to_owned();
        assert_eq!(num(&run, "workers"), 2.0);
        assert_eq!(run["source_addresses"], serde_json::json!(["127.0.0.2", "127.0.0.3"]));
        assert_eq!(num(&run, "connected"), 20.0, "{t}: {run}");
        assert_eq!(num(&run, "connect_errors"), 0.0, "{t}");
        assert!(num(&run, "updates_received") > 0.0, "{t}");
        assert!(!run["server"]["shared_with"].as_array().unwrap().is_empty(), "{t}: together");
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason() {
    let fail = |args: Vec<String>| async move {
        let out = tokio::time::timeout(
            DEADLINE,
            tokio::process::Command::new(env!("CARGO_BIN_EXE_pulse")).args(&args).output(),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let e = fail(args(&["bench", "--transports", "carrier-pigeon"])).await;
    assert!(e.contains("unknown transport"), "{e}");
    assert!(fail(args(&["bench", "--clients", "0"])).await.contains("at least 1"));
    // A port that was just free: bound, then released, so nothing listens on it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = format!("http://{closed}");
    let e = fail(args(&["bench", "--target", &target, "--quiet"])).await;
    assert!(e.contains("unreachable") && e.contains("--spawn"), "{e}");
}

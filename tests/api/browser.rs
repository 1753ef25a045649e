//! The comparison page in a real headless Chromium, driven over WebDriver: each transport's
//! numbers appear, measured by the server, SSE beats polling on bytes per update, and the
//! browser reports no error.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`).
//! Without them the test fails and says how to get them; it never skips silently.
//!
//! Browser errors are read two ways: the page collects uncaught errors, unhandled rejections,
//! CSP violations and `console.error` calls in `window.__pulseErrors`, and chromedriver's browser
//! log (`goog:loggingPrefs`) catches what the page cannot see, such as failed loads.

use std::io::Write;
use std::net::{TcpListener as StdTcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use pulse::Config;
use pulse::source::walk::WalkParams;

use crate::helpers::{fast_config, spawn_app_with};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long chromedriver gets to answer `/status`, and to exit when asked to.
const DRIVER_START: Duration = Duration::from_secs(20);
const DRIVER_EXIT: Duration = Duration::from_secs(5);
/// Upper bound for any one condition on the page; they normally hold within a few seconds.
const DEADLINE: Duration = Duration::from_secs(20);
/// How often a condition on the page is checked again.
const RECHECK: Duration = Duration::from_millis(100);
const MISSING_BROWSER: &str = "run ./scripts/test.sh, the README's test command: it installs \
     Debian's chromium and chromium-driver with apt-get when they are missing";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_measures_sse_and_polling_in_a_real_browser() {
    for (path, what) in [(CHROMEDRIVER, "chromedriver"), (CHROMIUM, "chromium")] {
        assert!(Path::new(path).exists(), "{what} is missing at {path}: {MISSING_BROWSER}");
    }
    let app = spawn_app_with(page_config()).await;
    let driver = ChromeDriver::start().await;
    let profile = TempDir::new("pulse-browser-profile");
    let browser = open_browser(&driver, &profile.path).await;

    // Always end the browser session, also when an assertion fails, so no Chromium outlives
    // the test; the chromedriver and the profile folder go with their guards.
    let outcome = AssertUnwindSafe(scenario(&browser, &driver, &app.url("/"))).catch_unwind().await;
    let _ = browser.close().await;
    app.stop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(browser: &Client, driver: &ChromeDriver, base: &str) {
    browser.goto(base).await.expect("open the page");
    wait_for(
        browser,
        "the page script to run",
        "return document.getElementById('btn-sse') !== null && window.__pulse !== undefined",
    )
    .await;

    // SSE alone: the counter shows a number and the updates keep coming.
    click(browser, "btn-sse").await;
    wait_for(
        browser,
        "the counter to show a number",
        "return /^\\d[\\d,]*$/.test(document.getElementById('counter').textContent.trim())",
    )
    .await;
    wait_for(
        browser,
        "a first SSE update",
        "return Number(document.getElementById('m-sse-updates').dataset.value) >= 1",
    )
    .await;
    let first = number(browser, "m-sse-updates").await;
    wait_for(
        browser,
        "the SSE updates metric to grow",
        &format!("return Number(document.getElementById('m-sse-updates').dataset.value) > {first}"),
    )
    .await;
    click(browser, "btn-sse").await;
    wait_for(
        browser,
        "SSE to stop",
        "return document.getElementById('status-sse').dataset.state === 'stopped'",
    )
    .await;

    // Polling alone, every 300 ms: requests are counted by the server.
    let interval = browser.find(Locator::Id("poll-interval")).await.expect("interval input");
    interval.clear().await.expect("clear the interval");
    interval.send_keys("300").await.expect("type the interval");
    click(browser, "btn-poll").await;
    wait_for(
        browser,
        "polling requests to be counted",
        "return Number(document.getElementById('m-poll-requests').dataset.value) >= 2",
    )
    .await;
    click(browser, "btn-poll").await;
    wait_for(
        browser,
        "polling to stop",
        "return document.getElementById('status-poll').dataset.state === 'stopped'",
    )
    .await;

    // Compare Polling and SSE against the same changes.
    for mode in ["poll", "etag", "longpoll", "sse", "ws"] {
        let wanted = mode == "poll" || mode == "sse";
        let checkbox =
            browser.find(Locator::Id(&format!("cmp-{mode}"))).await.expect("compare checkbox");
        if checkbox.is_selected().await.expect("checkbox state") != wanted {
            checkbox.click().await.expect("tick the checkbox");
        }
    }
    click(browser, "compare-start").await;
    wait_for(
        browser,
        "both compared modes to have measured bytes and several updates",
        "const v = (id) => Number(document.getElementById(id).dataset.value || 0);
         return v('m-poll-bytes_down') > 0 && v('m-sse-bytes_down') > 0
             && v('m-poll-updates') >= 4 && v('m-sse-updates') >= 8
             && document.getElementById('col-state-sse').dataset.state === 'running';",
    )
    .await;
    click(browser, "stop-all").await;
    wait_for(
        browser,
        "the last stats read of both modes",
        "return ['poll', 'sse'].every((m) => document.getElementById('col-state-' + m).dataset.state === 'finished')",
    )
    .await;

    for mode in ["poll", "sse"] {
        for metric in ["bytes_down", "bytes_up", "bytes_payload", "bytes_overhead", "requests"] {
            let value = number(browser, &format!("m-{mode}-{metric}")).await;
            assert!(value > 0.0, "{mode} {metric} is {value}, expected a measured non-zero value");
        }
        let col = browser.find(Locator::Id(&format!("col-{mode}"))).await.expect("column");
        assert!(
            col.is_displayed().await.expect("column visibility"),
            "the {mode} column is hidden"
        );
    }
    let poll = number(browser, "m-poll-bytes_per_update").await;
    let sse = number(browser, "m-sse-bytes_per_update").await;
    assert!(sse < poll, "SSE used {sse} bytes per update, polling {poll}: SSE should use fewer");
    let verdict = text(browser, "verdict").await;
    assert!(
        verdict.contains("SSE") && verdict.contains("Polling"),
        "verdict names both modes: {verdict}"
    );

    // No error anywhere in the browser.
    let page_errors =
        browser.execute("return window.__pulseErrors", vec![]).await.expect("read errors");
    assert_eq!(page_errors, json!([]), "the page recorded errors");
    let session = browser.session_id().await.expect("session id").expect("a session");
    let log: Value = reqwest::Client::new()
        .post(format!("{}/session/{session}/se/log", driver.url))
        .json(&json!({ "type": "browser" }))
        .send()
        .await
        .expect("ask chromedriver for the browser log")
        .json()
        .await
        .expect("browser log as JSON");
    let severe: Vec<&Value> = log["value"]
        .as_array()
        .expect("log entries")
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "the browser console has errors: {severe:#?}");
}

// ------------------------------------------------------------------------------ the page

async fn click(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click #{id}: {e}"));
}

/// The raw number a metric cell carries in `data-value` (its text is formatted for people).
async fn number(browser: &Client, id: &str) -> f64 {
    let value = browser
        .execute("return document.getElementById(arguments[0]).dataset.value", vec![json!(id)])
        .await
        .unwrap_or_else(|e| panic!("cannot read #{id}: {e}"));
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("#{id} holds no number: {value}"))
}

async fn text(browser: &Client, id: &str) -> String {
    browser.find(Locator::Id(id)).await.expect("element").text().await.expect("text")
}

/// Re-runs `script` (a function body returning a boolean) until it returns true, or fails with
/// what the page showed at the deadline.
async fn wait_for(browser: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let result = browser.execute(script, vec![]).await;
        if matches!(result, Ok(Value::Bool(true))) {
            return;
        }
        if Instant::now() >= deadline {
            let state = browser
                .execute(
                    "return {
                       statuses: [...document.querySelectorAll('.status')].map((s) => s.id + '=' + s.textContent),
                       notice: document.getElementById('notice').textContent,
                       log: [...document.querySelectorAll('#log tr')].slice(0, 8).map((r) => r.innerText),
                       errors: window.__pulseErrors,
                     }",
                    vec![],
                )
                .await;
            panic!(
                "timed out after {DEADLINE:?} waiting for {what}; last answer {result:?}; page: {state:#?}"
            );
        }
        tokio::time::sleep(RECHECK).await; // wait-ok: poll interval of a deadline-bounded wait
    }
}

async fn open_browser(driver: &ChromeDriver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not open Chromium: {e}; {MISSING_BROWSER}"))
}

// ------------------------------------------------------------------------------ the server

/// The real server, ticking every 100–200 ms: many changes in a few seconds, yet slow enough
/// that a 300 ms poll sees most of them.
fn page_config() -> Config {
    Config {
        walk: WalkParams {
            tick: Duration::from_millis(100)..=Duration::from_millis(200),
            ..WalkParams::default()
        },
        // Mid-range, so the walk has room both ways and keeps changing.
        start: 100,
        ..fast_config()
    }
}

// ------------------------------------------------------------------------------ chromedriver

/// A chromedriver process on a free port. Dropping it asks chromedriver to shut down (which
/// ends its browsers), then kills it if it has not exited in time.
struct ChromeDriver {
    url: String,
    port: u16,
    child: Child,
}

impl ChromeDriver {
    async fn start() -> Self {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}; {MISSING_BROWSER}"));
        let mut driver = ChromeDriver { url: format!("http://127.0.0.1:{port}"), port, child };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("an HTTP client");
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Some(status) = driver.child.try_wait().expect("chromedriver state") {
                panic!("chromedriver exited at start ({status}); {MISSING_BROWSER}");
            }
            let status = http.get(format!("{}/status", driver.url)).send().await;
            if let Ok(answer) = status {
                let body: Value = answer.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return driver;
                }
            }
            if Instant::now() >= deadline {
                panic!("chromedriver did not answer /status within {DRIVER_START:?}");
            }
            tokio::time::sleep(RECHECK).await; // wait-ok: poll interval of a deadline-bounded wait
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // `GET /shutdown` makes chromedriver quit its browsers and exit. A blocking write is
        // fine here: this runs once, at the end of the test, also when it panicked.
        // The connection stays open until chromedriver exits, so the request is surely read.
        let _request = TcpStream::connect(("127.0.0.1", self.port)).map(|mut stream| {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = write!(stream, "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            stream
        });
        let deadline = Instant::now() + DRIVER_EXIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50)); // wait-ok: polls for exit, bounded
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free port")
}

/// A fresh folder (the browser profile), removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(prefix: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

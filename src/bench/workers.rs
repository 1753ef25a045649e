//! Worker processes: a large run is split over several `pulse bench-worker` processes, each with
//! its own open-file budget and, against a loopback target, its own source address (127.0.0.2,
//! 127.0.0.3, …) so no single address runs out of ports.
//!
//! The parent passes a worker its `SwarmSpec` as JSON; the worker answers on stdout with JSON
//! lines: `ready`, then `progress` every quarter second, then `done` with its results. It starts
//! when the parent writes a line to its stdin (so every worker starts together) and exits when
//! its stdin closes early (the parent is gone).

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::measure::{Counts, TallyResult};
use super::swarm::{self, SwarmSpec};
use super::target::Target;

/// Clients one worker process runs at most: well inside the 20 000 open files of a process,
/// and a share of the two cores that keeps up with 1 change/s at every client.
pub const CLIENTS_PER_WORKER: usize = 5_000;
/// How long a worker may take to start and say it is ready.
const READY_DEADLINE: Duration = Duration::from_secs(30);

/// A line a worker writes on stdout.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerLine {
    Ready,
    Progress(Vec<Counts>),
    Done(Vec<TallyResult>),
}

/// The source address of worker `index` against `target`: its own loopback alias when the
/// target is on loopback (127.0.0.0/8 all routes to `lo`), else the system's choice.
pub fn source_for(index: usize, target: &Target) -> Option<IpAddr> {
    match target.addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let n = 2 + index as u32; // 127.0.0.2, 127.0.0.3, …
            Some(IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + n)))
        }
        _ => None,
    }
}

/// Splits `spec` over `workers` processes, runs them together and adds up their results.
pub async fn run(
    spec: &SwarmSpec,
    workers: usize,
    mut progress: impl FnMut(&[Counts]),
) -> anyhow::Result<Vec<TallyResult>> {
    let exe = std::env::current_exe().context("cannot find the pulse executable for workers")?;
    let (tx, mut rx) = mpsc::channel::<(usize, anyhow::Result<WorkerLine>)>(256);
    let mut children: Vec<Child> = Vec::new();
    for w in 0..workers {
        let mut part = spec.clone();
        part.groups = spec.groups.iter().map(|&(k, n)| (k, share(n, workers, w))).collect();
        part.source = source_for(w, &spec.target);
        part.seed = spec.seed.wrapping_add(w as u64 * 1_000_003);
        part.ramp_per_sec = spec.ramp_per_sec.map(|r| r / workers as f64);
        let mut child = Command::new(&exe)
            .arg("bench-worker")
            .arg("--spec")
            .arg(serde_json::to_string(&part)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start worker process {}", exe.display()))?;
        let stdout = child.stdout.take().context("worker stdout")?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                let line = match lines.next_line().await {
                    Ok(Some(line)) => serde_json::from_str(&line)
                        .with_context(|| format!("worker {w} wrote {line:?}")),
                    Ok(None) => Err(anyhow::anyhow!("worker {w} exited before it finished")),
                    Err(e) => Err(anyhow::Error::new(e).context(format!("reading worker {w}"))),
                };
                let end = !matches!(line, Ok(WorkerLine::Ready | WorkerLine::Progress(_)));
                if tx.send((w, line)).await.is_err() || end {
                    return;
                }
            }
        });
        children.push(child);
    }
    drop(tx);

    let mut ready = 0;
    let deadline = tokio::time::Instant::now() + READY_DEADLINE;
    while ready < workers {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, Ok(WorkerLine::Ready)))) => ready += 1,
            Ok(Some((w, Ok(other)))) => bail!("worker {w} said {other:?} before it was ready"),
            Ok(Some((_, Err(e)))) => return Err(e),
            Ok(None) => bail!("the workers exited before they were ready"),
            Err(_) => bail!("workers not ready after {READY_DEADLINE:?}"),
        }
    }
    for child in &mut children {
        let stdin = child.stdin.as_mut().context("worker stdin")?;
        stdin.write_all(b"go\n").await.context("starting a worker")?;
        stdin.flush().await?;
    }

    let mut latest: Vec<Vec<Counts>> = vec![vec![Counts::default(); spec.groups.len()]; workers];
    let mut results: Vec<Option<Vec<TallyResult>>> = vec![None; workers];
    while results.iter().any(Option::is_none) {
        let Some((w, line)) = rx.recv().await else { bail!("the workers exited early") };
        match line? {
            WorkerLine::Progress(counts) => {
                latest[w] = counts;
                progress(&sum(&latest, spec.groups.len()));
            }
            WorkerLine::Done(result) => results[w] = Some(result),
            WorkerLine::Ready => {}
        }
    }
    for mut child in children {
        drop(child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
    let mut merged = vec![TallyResult::default(); spec.groups.len()];
    for result in results.into_iter().flatten() {
        for (m, r) in merged.iter_mut().zip(result) {
            m.merge(r);
        }
    }
    Ok(merged)
}

/// Worker `w`'s share of `n` clients over `workers`.
fn share(n: usize, workers: usize, w: usize) -> usize {
    n / workers + usize::from(w < n % workers)
}

fn sum(latest: &[Vec<Counts>], groups: usize) -> Vec<Counts> {
    let mut total = vec![Counts::default(); groups];
    for worker in latest {
        for (t, c) in total.iter_mut().zip(worker) {
            *t += *c;
        }
    }
    total
}

/// The body of `pulse bench-worker`: runs one swarm as the parent asks.
pub async fn worker_main(spec: &str) -> anyhow::Result<()> {
    let spec: SwarmSpec = serde_json::from_str(spec).context("bench-worker: bad --spec")?;
    super::limits::raise_open_file_limit();
    say(&WorkerLine::Ready);
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    match stdin.next_line().await {
        Ok(Some(_)) => {}
        _ => return Ok(()), // the parent went away before the start
    }
    let run = swarm::run(&spec, |counts| say(&WorkerLine::Progress(counts.to_vec())));
    tokio::pin!(run);
    let results = tokio::select! {
        results = &mut run => results,
        // Stdin closing means the parent is gone: stop rather than load a server for no one.
        _ = async { while let Ok(Some(_)) = stdin.next_line().await {} } => return Ok(()),
    };
    say(&WorkerLine::Done(results));
    Ok(())
}

/// Writes one line to the parent.
fn say(line: &WorkerLine) {
    use std::io::Write;
    let text = serde_json::to_string(line).expect("worker lines serialise");
    let mut stdout = std::io::stdout().lock();
    // A parent that went away ends the worker through stdin; a failed write is moot.
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (n, w) in [(10, 3), (5000, 4), (2, 5), (0, 2)] {
            assert_eq!((0..w).map(|i| share(n, w, i)).sum::<usize>(), n);
        }
    }

    #[test]
    fn loopback_targets_get_one_source_address_per_worker() {
        let lo = Target::local("127.0.0.1:8080".parse().unwrap());
        assert_eq!(source_for(0, &lo), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(source_for(300, &lo), Some("127.0.1.46".parse().unwrap()));
        let v6 = Target::local("[::1]:8080".parse().unwrap());
        assert_eq!(source_for(0, &v6), None);
    }
}

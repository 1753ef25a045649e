//! The terminal table: one block per client count, transports side by side as columns.

use std::fmt::Write;

use super::{Report, Run};

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let p = &report.params;
    let tick = p.tick_ms.map(|t| format!(", tick {t} ms")).unwrap_or_default();
    let _ = writeln!(
        out,
        "pulse bench: {}{tick}, {} s per run, poll every {} s{}; {} cores, {} open files per process",
        p.target,
        p.duration_s,
        p.poll_interval_s,
        if p.together { ", transports together" } else { "" },
        p.cores,
        p.open_file_limit
    );
    for &clients in &p.clients {
        let runs: Vec<&Run> = report.runs.iter().filter(|r| r.clients == clients).collect();
        if runs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{clients} clients per transport");
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let mut row = |name: &str, f: &dyn Fn(&Run) -> String| {
            rows.push((name.to_owned(), runs.iter().map(|r| f(r)).collect()));
        };
        row("transport", &|r| r.transport.name().to_owned());
        row("clients connected", &|r| int(r.counts.connected));
        row("connect errors", &|r| int(r.counts.connect_errors));
        row("disconnects", &|r| int(r.counts.disconnects));
        row("HTTP errors", &|r| int(r.counts.http_errors));
        row("requests", &|r| int(r.counts.requests));
        row("bytes up", &|r| bytes(r.counts.bytes_up));
        row("bytes down", &|r| bytes(r.counts.bytes_down));
        row("changes published", &|r| {
            opt(r.server.as_ref().map(|s| s.changes as f64), |v| int(v as u64))
        });
        row("updates received", &|r| int(r.counts.updates));
        row("updates missed", &|r| int(r.counts.missed));
        row("wasted requests", &|r| int(r.counts.wasted));
        row("latency p50", &|r| ms(r.latency_ms.p50_ms, r.latency_ms.samples));
        row("latency p90", &|r| ms(r.latency_ms.p90_ms, r.latency_ms.samples));
        row("latency p99", &|r| ms(r.latency_ms.p99_ms, r.latency_ms.samples));
        row("latency max", &|r| ms(r.latency_ms.max_ms, r.latency_ms.samples));
        row("server CPU", &|r| {
            opt(r.server.as_ref().map(|s| s.cpu_seconds), |v| format!("{v:.2} s"))
        });
        row("server RSS peak", &|r| {
            opt(r.server.as_ref().map(|s| s.rss_peak_bytes as f64), |v| bytes(v as u64))
        });
        row("bytes / update", &|r| opt(r.derived.bytes_per_update, |v| format!("{v:.0} B")));
        row("server CPU / update", &|r| {
            opt(r.derived.server_cpu_us_per_update, |v| format!("{v:.1} µs"))
        });
        row("server RSS / conn", &|r| {
            opt(r.derived.server_rss_kb_per_connection, |v| format!("{v:.1} KB"))
        });
        let label = rows.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..runs.len())
            .map(|i| rows.iter().map(|(_, v)| v[i].chars().count()).max().unwrap_or(0).max(8))
            .collect();
        for (n, (name, values)) in rows.iter().enumerate() {
            let _ = write!(out, "{name:<label$}");
            for (v, w) in values.iter().zip(&widths) {
                let _ = write!(out, "  {v:>w$}");
            }
            out.push('\n');
            if n == 0 {
                let total = label + widths.iter().map(|w| w + 2).sum::<usize>();
                let _ = writeln!(out, "{}", "─".repeat(total));
            }
        }
        for r in &runs {
            if let Some(e) = &r.first_error {
                let _ = writeln!(out, "{}: first error: {e}", r.transport);
            }
            if let Some(s) = r.server.as_ref().filter(|s| !s.shared_with.is_empty()) {
                let _ = writeln!(
                    out,
                    "{}: server CPU and RSS shared with {}",
                    r.transport,
                    s.shared_with.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                );
                break;
            }
        }
    }
    out
}

/// 12345 → "12 345".
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 10 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 10 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn ms(v: f64, samples: u64) -> String {
    if samples == 0 { "–".into() } else { format!("{v:.1} ms") }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1234567), "1 234 567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(20 * 1024), "20.0 KiB");
        assert_eq!(bytes(30 << 20), "30.0 MiB");
    }
}

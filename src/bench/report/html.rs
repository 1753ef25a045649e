//! The HTML report: one self-contained page (no scripts, no external files) with the table and
//! inline SVG charts: latency percentiles per transport, bytes per update, and server CPU and
//! memory against clients.

use std::fmt::Write;

use super::table::{self, bytes, int};
use super::{Report, Run};

const PALETTE: [&str; 6] = ["#4269d0", "#efb118", "#ff725c", "#3ca951", "#a463f2", "#6cc5b0"];
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// How one cell of the figures table is written.
type Cell<'a> = dyn Fn(&Run) -> String + 'a;

/// A chart's series: a name and one value per category (`None`: not measured).
type Series = (String, Vec<Option<f64>>);

pub fn render(report: &Report) -> String {
    let p = &report.params;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>pulse bench</title><style>{CSS}</style></head><body>\n\
         <h1>pulse bench</h1>\n<p class=\"params\">{}</p>\n",
        escape(&params_line(report))
    );
    let sizes = &p.clients;
    let transports: Vec<String> = p.transports.iter().map(|k| k.name().to_owned()).collect();
    let find = |k: &str, n: usize| -> Option<&Run> {
        report.runs.iter().find(|r| r.transport.name() == k && r.clients == n)
    };

    out.push_str(
        "<h2>Update latency</h2>\n<p>From the moment the count changed (server \
        timestamp) to its receipt by a client, on one host clock. Polling includes the wait for \
        the next poll.</p>\n<div class=\"charts\">",
    );
    for &n in sizes {
        let series: Vec<Series> = [("p50", 0), ("p90", 1), ("p99", 2), ("max", 3)]
            .iter()
            .map(|&(name, i)| {
                let values = transports
                    .iter()
                    .map(|k| {
                        find(k, n).filter(|r| r.latency_ms.samples > 0).map(|r| {
                            let l = &r.latency_ms;
                            [l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms][i]
                        })
                    })
                    .collect();
                (name.to_owned(), values)
            })
            .collect();
        out.push_str(&bar_chart(
            "latency",
            &format!("Latency percentiles, {} clients", int(n as u64)),
            "ms, log scale",
            &transports,
            &series,
            true,
        ));
    }
    out.push_str(
        "</div>\n<h2>Bytes per update</h2>\n<p>Bytes on the wire at the clients (up and \
        down, headers and framing included) per update received.</p>\n<div class=\"charts\">",
    );
    let per_size = |f: &dyn Fn(&Run) -> Option<f64>| -> Vec<Series> {
        sizes
            .iter()
            .map(|&n| {
                let values = transports.iter().map(|k| find(k, n).and_then(f)).collect();
                (format!("{} clients", int(n as u64)), values)
            })
            .collect()
    };
    out.push_str(&bar_chart(
        "bytes-per-update",
        "Bytes per update",
        "B",
        &transports,
        &per_size(&|r| r.derived.bytes_per_update),
        false,
    ));
    out.push_str("</div>\n<h2>Server cost against clients</h2>\n<div class=\"charts\">");
    let per_transport = |f: &dyn Fn(&Run) -> Option<f64>| -> Vec<Series> {
        transports
            .iter()
            .map(|k| (k.clone(), sizes.iter().map(|&n| find(k, n).and_then(f)).collect()))
            .collect()
    };
    let xs: Vec<String> = sizes.iter().map(|&n| int(n as u64)).collect();
    out.push_str(&line_chart(
        "server-cpu",
        "Server CPU seconds",
        "s",
        &xs,
        &per_transport(&|r| r.server.as_ref().map(|s| s.cpu_seconds)),
    ));
    out.push_str(&line_chart(
        "server-rss",
        "Server RSS peak",
        "MiB",
        &xs,
        &per_transport(&|r| r.server.as_ref().map(|s| s.rss_peak_bytes as f64 / 1048576.0)),
    ));
    out.push_str(&line_chart(
        "server-cpu-per-update",
        "Server CPU per delivered update",
        "µs",
        &xs,
        &per_transport(&|r| r.derived.server_cpu_us_per_update),
    ));
    out.push_str(&line_chart(
        "server-rss-per-connection",
        "Server RSS per open connection",
        "KB",
        &xs,
        &per_transport(&|r| r.derived.server_rss_kb_per_connection),
    ));
    out.push_str("</div>\n<h2>Every figure</h2>\n");
    for &n in sizes {
        let runs: Vec<&Run> = transports.iter().filter_map(|k| find(k, n)).collect();
        out.push_str(&figures_table(n, &runs));
    }
    let text = table::render(report);
    let _ =
        writeln!(out, "<details><summary>As text</summary><pre>{}</pre></details>", escape(&text));
    out.push_str("</body></html>\n");
    out
}

fn params_line(report: &Report) -> String {
    let p = &report.params;
    let mut line = format!(
        "{} · {} s per run · poll every {} s · {} cores · {} open files per process · {}",
        p.target, p.duration_s, p.poll_interval_s, p.cores, p.open_file_limit, p.started_at
    );
    if let Some(t) = p.tick_ms {
        line.push_str(&format!(" · spawned server, tick {t} ms"));
    }
    if p.together {
        line.push_str(" · transports together");
    }
    if let Some(c) = &p.command {
        line.push_str(&format!(" · {c}"));
    }
    line
}

fn figures_table(n: usize, runs: &[&Run]) -> String {
    let mut out =
        format!("<table><caption>{} clients per transport</caption><tr><th></th>", int(n as u64));
    for r in runs {
        let _ = write!(out, "<th>{}</th>", r.transport);
    }
    out.push_str("</tr>\n");
    let fmt_opt = |v: Option<f64>, unit: &str| {
        v.map(|v| format!("{v:.1} {unit}")).unwrap_or_else(|| "–".into())
    };
    let rows: [(&str, &Cell); 17] = [
        ("clients connected", &|r| int(r.counts.connected)),
        ("connect errors", &|r| int(r.counts.connect_errors)),
        ("disconnects", &|r| int(r.counts.disconnects)),
        ("requests", &|r| int(r.counts.requests)),
        ("bytes up", &|r| bytes(r.counts.bytes_up)),
        ("bytes down", &|r| bytes(r.counts.bytes_down)),
        ("updates received", &|r| int(r.counts.updates)),
        ("updates missed", &|r| int(r.counts.missed)),
        ("wasted requests", &|r| int(r.counts.wasted)),
        ("latency p50", &|r| format!("{:.1} ms", r.latency_ms.p50_ms)),
        ("latency p90", &|r| format!("{:.1} ms", r.latency_ms.p90_ms)),
        ("latency p99", &|r| format!("{:.1} ms", r.latency_ms.p99_ms)),
        ("latency max", &|r| format!("{:.1} ms", r.latency_ms.max_ms)),
        ("server CPU", &|r| fmt_opt(r.server.as_ref().map(|s| s.cpu_seconds), "s")),
        ("bytes / update", &|r| fmt_opt(r.derived.bytes_per_update, "B")),
        ("server CPU / update", &|r| fmt_opt(r.derived.server_cpu_us_per_update, "µs")),
        ("server RSS / connection", &|r| fmt_opt(r.derived.server_rss_kb_per_connection, "KB")),
    ];
    for (name, f) in rows {
        let _ = write!(out, "<tr><th>{name}</th>");
        for r in runs {
            let _ = write!(out, "<td>{}</td>", escape(&f(r)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// Grouped vertical bars: one group per category, one bar per series.
fn bar_chart(
    id: &str,
    title: &str,
    unit: &str,
    categories: &[String],
    series: &[Series],
    log: bool,
) -> String {
    let values = series.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let scale = if log { Scale::log(values) } else { Scale::Linear(nice_max(values)) };
    let mut svg = open_svg(id, title, unit, &scale);
    let plot_w = WIDTH - LEFT - RIGHT;
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let gx = LEFT + c as f64 * group_w;
        for (s, (name, values)) in series.iter().enumerate() {
            let Some(v) = values.get(c).copied().flatten() else { continue };
            let h = scale.fraction(v) * (HEIGHT - TOP - BOTTOM);
            let x = gx + group_w * 0.1 + s as f64 * bar_w;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\">\
                 <title>{} {}: {} {unit}</title></rect>",
                HEIGHT - BOTTOM - h,
                (bar_w - 1.0).max(1.0),
                PALETTE[s % PALETTE.len()],
                escape(category),
                escape(name),
                short(v)
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            gx + group_w / 2.0,
            HEIGHT - BOTTOM + 18.0,
            escape(category)
        );
    }
    legend(&mut svg, series);
    svg.push_str("</svg>");
    svg
}

/// Lines over categorical x positions (client counts), one per series; points alone when
/// there is one x.
fn line_chart(id: &str, title: &str, unit: &str, xs: &[String], series: &[Series]) -> String {
    let max = nice_max(series.iter().flat_map(|(_, v)| v.iter().flatten().copied()));
    let mut svg = open_svg(id, title, unit, &Scale::Linear(max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let step = plot_w / xs.len().max(1) as f64;
    let x_of = |i: usize| LEFT + step * (i as f64 + 0.5);
    let y_of = |v: f64| HEIGHT - BOTTOM - v / max * (HEIGHT - TOP - BOTTOM);
    for (i, x) in xs.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} clients</text>",
            x_of(i),
            HEIGHT - BOTTOM + 18.0,
            escape(x)
        );
    }
    for (s, (name, values)) in series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x_of(i), y_of(v))))
            .collect();
        if points.len() > 1 {
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        for (i, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"><title>{} at {}: {} {unit}</title></circle>",
                    x_of(i),
                    y_of(*v),
                    escape(name),
                    escape(&xs[i]),
                    short(*v)
                );
            }
        }
    }
    legend(&mut svg, series);
    svg.push_str("</svg>");
    svg
}

/// The lowest decade of a log scale: 0.1.
const LOG_FLOOR: i32 = -1;

/// How values map to the height of a chart.
enum Scale {
    /// From 0 to this.
    Linear(f64),
    /// From 10^LOG_FLOOR to 10 to the power of this: for values spanning tenths of a
    /// millisecond to seconds.
    Log(i32),
}

impl Scale {
    fn log(values: impl Iterator<Item = f64>) -> Scale {
        let max = values.fold(10f64.powi(LOG_FLOOR), f64::max);
        Scale::Log((max.log10().ceil() as i32).max(1))
    }

    /// Where `v` sits, from 0 (bottom) to 1 (top).
    fn fraction(&self, v: f64) -> f64 {
        match *self {
            Scale::Linear(max) => v / max,
            Scale::Log(top) => {
                let floor = f64::from(LOG_FLOOR);
                ((v.log10() - floor) / (f64::from(top) - floor)).clamp(0.0, 1.0)
            }
        }
    }

    fn ticks(&self) -> Vec<f64> {
        match *self {
            Scale::Linear(max) => (0..=4).map(|i| max * i as f64 / 4.0).collect(),
            Scale::Log(top) => (LOG_FLOOR..=top).map(|d| 10f64.powi(d)).collect(),
        }
    }
}

fn open_svg(id: &str, title: &str, unit: &str, scale: &Scale) -> String {
    let mut svg = format!(
        "<svg class=\"chart\" data-chart=\"{id}\" xmlns=\"http://www.w3.org/2000/svg\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" \
         aria-label=\"{t}\"><text class=\"title\" x=\"{LEFT}\" y=\"22\">{t} ({u})</text>",
        t = escape(title),
        u = escape(unit)
    );
    for v in scale.ticks() {
        let y = HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * scale.fraction(v);
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            short(v)
        );
    }
    svg
}

fn legend(svg: &mut String, series: &[Series]) {
    let mut x = LEFT;
    for (s, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            HEIGHT - 22.0,
            PALETTE[s % PALETTE.len()],
            x + 14.0,
            HEIGHT - 13.0,
            escape(name)
        );
        x += 24.0 + 7.5 * name.chars().count() as f64;
    }
}

/// A round upper bound for an axis.
fn nice_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0f64, f64::max);
    if max <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    let steps = [1.0, 2.0, 2.5, 5.0, 10.0];
    steps.iter().map(|s| s * magnitude).find(|&m| m >= max).unwrap_or(10.0 * magnitude)
}

fn short(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1500px;\
color:#1b1e23;padding:0 1rem}h1{margin-bottom:.2rem}.params{color:#555}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}svg.chart{background:#fff;border:1px solid #ddd;\
border-radius:6px;font-size:12px;max-width:100%;height:auto}svg .title{font-size:15px;\
font-weight:600}svg .grid{stroke:#eee}table{border-collapse:collapse;margin:1rem 0}\
caption{text-align:left;font-weight:600;padding:.3rem 0}th,td{padding:.25rem .7rem;\
border-bottom:1px solid #eee;text-align:right}tr th:first-child{text-align:left;font-weight:400;\
color:#444}pre{font-size:12px}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_bounds_are_round() {
        assert_eq!(nice_max([0.0].into_iter()), 1.0);
        assert_eq!(nice_max([7.3].into_iter()), 10.0);
        assert_eq!(nice_max([180.0, 3.0].into_iter()), 200.0);
        assert_eq!(nice_max([2001.0].into_iter()), 2500.0);
    }

    #[test]
    fn log_scale_spans_decades() {
        let scale = Scale::log([0.05, 4_800.0].into_iter());
        assert_eq!(scale.ticks(), vec![0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert_eq!(scale.fraction(0.05), 0.0);
        assert!((scale.fraction(31.622_776_6) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn charts_are_svg_with_escaped_labels() {
        let s =
            bar_chart("x", "A <b>", "ms", &["p&q".into()], &[("s".into(), vec![Some(3.0)])], false);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("A &lt;b&gt;") && s.contains("p&amp;q") && s.contains("<rect"));
        let l = line_chart(
            "y",
            "L",
            "s",
            &["1".into(), "2".into()],
            &[("a".into(), vec![Some(1.0), None])],
        );
        assert!(l.contains("<circle") && !l.contains("<polyline"));
    }
}

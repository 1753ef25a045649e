//! The wire counters in Prometheus text format, through `prometheus-client`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::process;
use super::stats::{CountersReport, WireStats};
use crate::transport::Transport;

/// Renders every counter of `stats` (and this process's CPU and memory) for a scrape.
pub fn render(stats: &Arc<WireStats>) -> String {
    let mut registry = Registry::with_prefix("pulse");
    registry.register_collector(Box::new(WireCollector(stats.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

#[derive(Debug)]
struct WireCollector(Arc<WireStats>);

type Field = fn(&CountersReport) -> u64;

const COUNTERS: [(&str, &str, Option<Unit>, Field); 6] = [
    ("requests", "HTTP requests served", None, |c| c.requests),
    ("received", "Bytes read from clients", Some(Unit::Bytes), |c| c.bytes_in),
    ("sent", "Bytes written to clients", Some(Unit::Bytes), |c| c.bytes_out),
    ("payload_sent", "Payload bytes written", Some(Unit::Bytes), |c| c.payload_bytes_out),
    ("events", "Snapshots delivered", None, |c| c.events),
    ("not_modified", "Conditional requests answered 304", None, |c| c.not_modified),
];

impl Collector for WireCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let reports: Vec<_> =
            Transport::ALL.iter().map(|&t| (t, self.0.total().get(t).report())).collect();
        for (name, help, unit, field) in COUNTERS {
            let mut family = encoder.encode_descriptor(
                name,
                help,
                unit.as_ref(),
                ConstCounter::new(0u64).metric_type(),
            )?;
            for (t, report) in &reports {
                let labels = [("transport", t.name())];
                ConstCounter::new(field(report)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut open = encoder.encode_descriptor(
            "open_connections",
            "Connections whose latest request was of this transport",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (t, report) in &reports {
            let labels = [("transport", t.name())];
            ConstGauge::new(report.open_connections as i64).encode(open.encode_family(&labels)?)?;
        }
        let process = process::report();
        let cpu = ConstCounter::new(process.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu",
            "CPU time used by this process",
            Some(&Unit::Seconds),
            cpu.metric_type(),
        )?)?;
        let rss = ConstGauge::new(process.rss_bytes as i64);
        rss.encode(encoder.encode_descriptor(
            "process_resident_memory",
            "Resident memory of this process",
            Some(&Unit::Bytes),
            rss.metric_type(),
        )?)?;
        let conns = ConstGauge::new(self.0.connections_open() as i64);
        conns.encode(encoder.encode_descriptor(
            "connections",
            "Open client connections",
            None,
            conns.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn renders_labelled_counters() {
        let stats = Arc::new(WireStats::default());
        stats.total().get(Transport::Sse).events.fetch_add(12, Relaxed);
        let text = render(&stats);
        assert!(text.contains("pulse_events_total{transport=\"sse\"} 12"), "{text}");
        assert!(text.contains("pulse_sent_bytes_total{transport=\"poll\"} 0"), "{text}");
        assert!(text.contains("# TYPE pulse_process_resident_memory_bytes gauge"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}

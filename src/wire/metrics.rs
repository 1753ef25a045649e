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

/// What a scrape reports beside the wire counters: the count source and the hub.
#[derive(Clone, Debug)]
pub struct SourceGauges {
    /// `simulator` or `redis`.
    pub kind: &'static str,
    pub healthy: bool,
    /// Whether this instance runs the simulation (always, without Redis).
    pub leader: bool,
    pub snapshot_id: u64,
    pub count: u32,
    /// Open streams, held long polls and WebSockets waiting on the hub.
    pub subscribers: usize,
}

/// Renders every counter of `stats`, the source's state and this process's CPU and memory.
pub fn render(stats: &Arc<WireStats>, source: SourceGauges) -> String {
    let mut registry = Registry::with_prefix("pulse");
    registry.register_collector(Box::new(WireCollector(stats.clone(), source)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

#[derive(Debug)]
struct WireCollector(Arc<WireStats>, SourceGauges);

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
        let source = &self.1;
        let mut healthy = encoder.encode_descriptor(
            "source_healthy",
            "1 while the count source is healthy; 0 while degraded (the last Snapshot is served)",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        ConstGauge::new(i64::from(source.healthy))
            .encode(healthy.encode_family(&[("kind", source.kind)])?)?;
        let gauges = [
            (
                "source_leader",
                "1 while this instance runs the simulation",
                i64::from(source.leader),
            ),
            ("snapshot_id", "Id of the current Snapshot", source.snapshot_id as i64),
            ("users_online", "The current count", i64::from(source.count)),
            (
                "subscribers",
                "Streams, long polls and WebSockets waiting for a change",
                source.subscribers as i64,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
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
        let source = SourceGauges {
            kind: "redis",
            healthy: false,
            leader: true,
            snapshot_id: 42,
            count: 57,
            subscribers: 3,
        };
        let text = render(&stats, source);
        assert!(text.contains("pulse_events_total{transport=\"sse\"} 12"), "{text}");
        assert!(text.contains("pulse_sent_bytes_total{transport=\"poll\"} 0"), "{text}");
        assert!(text.contains("# TYPE pulse_process_resident_memory_bytes gauge"), "{text}");
        assert!(text.contains("pulse_source_healthy{kind=\"redis\"} 0"), "{text}");
        assert!(text.contains("pulse_source_leader 1"), "{text}");
        assert!(text.contains("pulse_snapshot_id 42"), "{text}");
        assert!(text.contains("pulse_users_online 57"), "{text}");
        assert!(text.contains("pulse_subscribers 3"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}

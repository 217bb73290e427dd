//! Counters for `/metrics`, in Prometheus' text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The server's counters and gauges. Cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Webhook POSTs stored.
    pub webhooks_accepted: AtomicU64,
    /// Webhook POSTs refused for their signature.
    pub webhooks_unsigned: AtomicU64,
    /// Webhook POSTs stored but not JSON.
    pub webhooks_malformed: AtomicU64,
    /// Webhook POSTs that could not be stored (answered 503).
    pub webhooks_unstored: AtomicU64,
    /// Inbound messages seen twice (dropped as duplicates).
    pub duplicate_messages: AtomicU64,
    /// Inbound messages turned into engine events.
    pub messages_processed: AtomicU64,
    /// Delivery statuses received.
    pub statuses: AtomicU64,
    /// Bodies waiting for the engine.
    pub inbox_backlog: AtomicI64,
    /// Messages waiting to be sent.
    pub outbox_depth: AtomicI64,
    /// Messages Meta accepted.
    pub sent: AtomicU64,
    /// Send failures that will be retried.
    pub send_retries: AtomicU64,
    /// Sends that failed for good.
    pub send_failures: AtomicU64,
    /// Sends whose outcome is unknown.
    pub send_uncertain: AtomicU64,
    /// SLA breaches.
    pub sla_breaches: AtomicU64,
    /// Engine batches committed.
    pub batches: AtomicU64,
}

impl Metrics {
    /// Adds one.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The text `/metrics` answers.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 13] = [
            (
                "switchboard_webhooks_accepted_total",
                "Webhook bodies stored",
                &self.webhooks_accepted,
            ),
            (
                "switchboard_webhooks_unsigned_total",
                "Webhooks refused for a bad or missing signature",
                &self.webhooks_unsigned,
            ),
            (
                "switchboard_webhooks_malformed_total",
                "Signed webhook bodies that were not JSON",
                &self.webhooks_malformed,
            ),
            (
                "switchboard_webhooks_unstored_total",
                "Webhooks answered 503 because the database failed",
                &self.webhooks_unstored,
            ),
            (
                "switchboard_duplicate_messages_total",
                "Inbound messages received more than once",
                &self.duplicate_messages,
            ),
            (
                "switchboard_messages_processed_total",
                "Inbound messages applied to cards",
                &self.messages_processed,
            ),
            (
                "switchboard_statuses_total",
                "Delivery statuses received",
                &self.statuses,
            ),
            (
                "switchboard_sent_total",
                "Messages WhatsApp accepted",
                &self.sent,
            ),
            (
                "switchboard_send_retries_total",
                "Sends that failed and will be retried",
                &self.send_retries,
            ),
            (
                "switchboard_send_failures_total",
                "Sends that failed for good",
                &self.send_failures,
            ),
            (
                "switchboard_send_uncertain_total",
                "Sends whose outcome is unknown",
                &self.send_uncertain,
            ),
            (
                "switchboard_sla_breaches_total",
                "SLA clocks that ran out",
                &self.sla_breaches,
            ),
            (
                "switchboard_engine_batches_total",
                "Engine batches committed",
                &self.batches,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let gauges: [(&str, &str, &AtomicI64); 2] = [
            (
                "switchboard_inbox_backlog",
                "Webhook bodies waiting for the engine",
                &self.inbox_backlog,
            ),
            (
                "switchboard_outbox_depth",
                "Messages waiting to be sent",
                &self.outbox_depth,
            ),
        ];
        for (name, help, g) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}",
                g.load(Ordering::Relaxed)
            );
        }
        out
    }
}

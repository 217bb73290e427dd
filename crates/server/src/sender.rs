//! The outbound sender: takes queued messages from the outbox and sends
//! them through the Graph API at the pace WhatsApp allows (per business
//! number, and per recipient), retrying what may pass and never what cannot.
//!
//! Meta offers no idempotency key. A send whose answer we never got (a
//! timeout, a crash between the request and its record) is *uncertain*: it
//! waits a quiet period for a status webhook naming it, and is sent once
//! more only if none came — the message then says it may have arrived twice.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::processor::Command;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_store::{AlertRow, OutboxRow, Store};
use switchboard_whatsapp::graph::{ErrorClass, GraphClient, GraphError, SendRequest};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

/// Sends at most this many messages at once.
const CLAIM: i64 = 32;
/// Gives up on a message that keeps failing for passing reasons.
const MAX_ATTEMPTS: i64 = 8;
/// Per recipient: a burst of this many, then one every [`PAIR_EVERY`].
const PAIR_BURST: f64 = 10.0;
/// WhatsApp's pair rate: one message every 6 s to the same user.
const PAIR_EVERY: Duration = Duration::from_secs(6);

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Paces sends per number and per (number, recipient).
#[derive(Debug, Default)]
struct Pace {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Pace {
    /// Takes a token from the bucket `key` (capacity `burst`, `rate` per
    /// second) and says how long to wait before using it.
    fn take(&self, key: &str, burst: f64, rate: f64) -> Duration {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now;
        b.tokens -= 1.0;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / rate)
        }
    }
}

/// What the sender needs.
pub(crate) struct Sender {
    pub(crate) store: Store,
    pub(crate) config: Arc<Config>,
    pub(crate) client: GraphClient,
    pub(crate) active: Arc<AtomicBool>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) engine: mpsc::Sender<Command>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) progress: Arc<watch::Sender<u64>>,
}

impl Sender {
    /// Runs until shutdown, then lets the sends in flight finish.
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let pace = Arc::new(Pace::default());
        loop {
            if *shutdown.borrow() {
                break;
            }
            let mut claimed = 0;
            if this.active.load(Ordering::SeqCst) {
                let now = crate::now_ms();
                let claim_until = now + this.config.send_claim.as_millis() as i64;
                match this.store.claim_outbox(now, claim_until, CLAIM).await {
                    Ok(rows) => {
                        claimed = rows.len();
                        let mut sends = JoinSet::new();
                        for row in rows {
                            let this = this.clone();
                            let pace = pace.clone();
                            sends.spawn(async move { this.send(row, &pace).await });
                        }
                        while sends.join_next().await.is_some() {
                            crate::bump(&this.progress);
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot take messages from the outbox"),
                }
                if let Ok(waiting) = this.store.outbox_waiting().await {
                    this.metrics.outbox_depth.store(waiting, Ordering::Relaxed);
                }
            }
            if claimed as i64 == CLAIM {
                continue;
            }
            let wait = match this.store.next_outbox_due().await {
                Ok(Some(due)) => {
                    Duration::from_millis((due - crate::now_ms()).clamp(0, 1_000) as u64)
                }
                _ => Duration::from_secs(1),
            };
            tokio::select! {
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("sender stopped");
    }

    async fn send(&self, row: OutboxRow, pace: &Pace) {
        let now = crate::now_ms();
        let mut request: SendRequest = match serde_json::from_str(&row.request) {
            Ok(r) => r,
            Err(e) => {
                self.fail(
                    &row,
                    None,
                    &format!("the queued message is damaged: {e}"),
                    false,
                )
                .await;
                return;
            }
        };
        if request.phone_number_id.is_empty() {
            let reason = "no WhatsApp number id is known for this pipe yet (it is learnt from the first webhook to the number)";
            self.fail(&row, None, reason, false).await;
            return;
        }
        request.callback_data = Some(row.id.to_string());
        let rate = f64::from(self.config.send_rate);
        let wait = pace
            .take(&request.phone_number_id, rate, rate)
            .max(pace.take(
                &format!("{}/{}", request.phone_number_id, request.to),
                PAIR_BURST,
                1.0 / PAIR_EVERY.as_secs_f64(),
            ));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let result = self.client.send(&request).await;
        let done = crate::now_ms();
        let stored = match result {
            Ok(accepted) => {
                Metrics::bump(&self.metrics.sent);
                let r = self
                    .store
                    .outbox_accepted(row.id, &accepted.wamid, done)
                    .await;
                if row.uncertain && r.is_ok() {
                    let _ = self
                        .store
                        .note_message(
                            row.card_id,
                            &row.message_key,
                            "sent again after an attempt whose outcome was unknown: the customer may have it twice",
                        )
                        .await;
                }
                r
            }
            Err(e) => return self.failed(&row, e, now).await,
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, outbox = row.id, "a sent message could not be recorded; it will show as uncertain");
        }
    }

    async fn failed(&self, row: &OutboxRow, e: GraphError, now: i64) {
        let message = e.to_string();
        tracing::warn!(outbox = row.id, class = ?e.class, code = ?e.code, fbtrace = ?e.fbtrace_id, "send failed: {message}");
        let result = match e.class {
            ErrorClass::Transient if row.attempts < MAX_ATTEMPTS => {
                Metrics::bump(&self.metrics.send_retries);
                // Pair rate (131056): 4^X seconds; otherwise 2^X, at most 5 minutes.
                let secs = if e.code == Some(131056) {
                    4_i64.saturating_pow(row.attempts.saturating_sub(1) as u32)
                } else {
                    2_i64.saturating_pow(row.attempts as u32)
                }
                .min(300);
                self.store
                    .outbox_retry(row.id, now + secs * 1000, e.code, &message, now)
                    .await
            }
            ErrorClass::Ambiguous if !row.uncertain => {
                Metrics::bump(&self.metrics.send_uncertain);
                let quiet = self.config.uncertain_quiet.as_millis() as i64;
                self.store
                    .outbox_unknown(row.id, now + quiet, &message, now)
                    .await
            }
            ErrorClass::Operations => {
                Metrics::bump(&self.metrics.send_retries);
                let _ = self
                    .store
                    .alert(&AlertRow {
                        at: now,
                        kind: "sending_paused".into(),
                        detail: format!(
                            "sending from number id {} needs an operator: {message}",
                            row.phone_number_id
                        ),
                    })
                    .await;
                self.store
                    .outbox_retry(row.id, now + 300_000, e.code, &message, now)
                    .await
            }
            class => {
                let why = if class == ErrorClass::Ambiguous {
                    format!("WhatsApp confirmed neither attempt; it may or may not have arrived: {message}")
                } else {
                    message
                };
                self.fail(row, e.code, &why, class == ErrorClass::WindowClosed)
                    .await;
                return;
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, outbox = row.id, "cannot record a failed send");
        }
    }

    /// A message that will not go: the row, the card's message and the
    /// card (through the engine) say why.
    async fn fail(&self, row: &OutboxRow, code: Option<i64>, reason: &str, window_closed: bool) {
        Metrics::bump(&self.metrics.send_failures);
        if let Err(e) = self
            .store
            .outbox_failed(row.id, code, reason, crate::now_ms())
            .await
        {
            tracing::error!(error = %e, outbox = row.id, "cannot record a failed send");
        }
        let _ = self
            .engine
            .send(Command::Undeliverable {
                card: row.card_id,
                message: row.message_key.clone(),
                reason: reason.to_string(),
                window_closed,
            })
            .await;
    }
}

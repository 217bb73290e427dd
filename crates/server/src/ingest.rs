//! The webhook: verify the signature, store the raw body durably, then
//! answer 200 — in that order. One writer task groups the bodies of
//! concurrent requests into one transaction (group commit), so throughput
//! does not depend on one fsync per request.

use crate::metrics::Metrics;
use crate::App;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_store::{InboxItem, Store};
use switchboard_whatsapp::signature;
use tokio::sync::{mpsc, oneshot, Notify};

/// A body waiting to be stored, and who waits for the answer.
pub(crate) struct InboxJob {
    body: Vec<u8>,
    received_at: i64,
    stored: oneshot::Sender<bool>,
}

/// Most bodies one transaction takes.
const GROUP: usize = 500;

/// Stores bodies as they come, as many per transaction as are waiting, and
/// wakes the engine after each commit.
pub(crate) async fn inbox_writer(
    store: Store,
    mut jobs: mpsc::Receiver<InboxJob>,
    engine: Arc<Notify>,
    metrics: Arc<Metrics>,
    progress: Arc<tokio::sync::watch::Sender<u64>>,
) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let mut items = Vec::with_capacity(group.len());
        let mut waiting = Vec::with_capacity(group.len());
        for j in group {
            items.push(InboxItem {
                body: j.body,
                received_at: j.received_at,
            });
            waiting.push(j.stored);
        }
        let mut stored = 0;
        let ok = match store.append_inbox(&items).await {
            Ok(n) => {
                // Identical retries are stored once: count only new rows.
                stored = n as i64;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, bodies = items.len(), "webhook bodies could not be stored; answering 503 so Meta retries");
                false
            }
        };
        for w in waiting {
            let _ = w.send(ok);
        }
        if ok {
            metrics
                .inbox_backlog
                .fetch_add(stored, std::sync::atomic::Ordering::Relaxed);
            engine.notify_one();
        }
        crate::bump(&progress);
    }
}

/// `GET /webhooks/whatsapp`: Meta's subscription handshake.
pub(crate) async fn handshake(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match signature::handshake(
        q.get("hub.mode").map(String::as_str),
        q.get("hub.verify_token").map(String::as_str),
        q.get("hub.challenge").map(String::as_str),
        &app.config.verify_tokens,
    ) {
        Some(challenge) => {
            (StatusCode::OK, [("content-type", "text/plain")], challenge).into_response()
        }
        None => {
            tracing::warn!("webhook handshake refused: wrong mode or verify token");
            (StatusCode::FORBIDDEN, "the verify token does not match").into_response()
        }
    }
}

/// `POST /webhooks/whatsapp`: a signed notification.
pub(crate) async fn receive(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = signature::verify(&app.config.app_secrets, &body, header) {
        Metrics::bump(&app.metrics.webhooks_unsigned);
        tracing::warn!(reason = %e, bytes = body.len(), "webhook refused");
        return crate::api_error(StatusCode::UNAUTHORIZED, "bad_signature", &e.to_string());
    }
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    let (stored, answer) = oneshot::channel();
    let job = InboxJob {
        body: body.to_vec(),
        received_at: crate::now_ms(),
        stored,
    };
    let ok = app.inbox.send(job).await.is_ok() && answer.await.unwrap_or(false);
    if !ok {
        Metrics::bump(&app.metrics.webhooks_unstored);
        return crate::api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_stored",
            "the webhook could not be stored; retry later",
        );
    }
    if !is_json {
        // Stored and flagged (the engine notes it): Meta's retries of this
        // body are the same row, and nothing else in the batch is lost.
        Metrics::bump(&app.metrics.webhooks_malformed);
        tracing::warn!(
            bytes = body.len(),
            "signed webhook body is not JSON; stored and flagged"
        );
        return crate::api_error(
            StatusCode::BAD_REQUEST,
            "not_json",
            "the body is not JSON; it was stored and flagged for an operator",
        );
    }
    Metrics::bump(&app.metrics.webhooks_accepted);
    StatusCode::OK.into_response()
}

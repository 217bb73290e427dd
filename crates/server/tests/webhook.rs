//! The webhook and everything behind it, over real HTTP: signatures, the
//! handshake, storage before 200, duplicates, statuses, sizes, bad bodies,
//! every payload kind, and the sender's answers to WhatsApp's errors.

mod common;

use common::{Harness, FLOW};
use std::time::Duration;
use switchboard_whatsapp::fake::Scripted;
use switchboard_whatsapp::signature::sign;

const MARIA: &str = "5511987650001";

#[tokio::test]
async fn the_handshake_echoes_the_challenge_only_for_our_token() {
    let h = Harness::start(FLOW).await;
    let ok = h
        .http
        .get(h.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=test-token&hub.challenge=1158201444"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let wrong = h
        .http
        .get(h.url("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    h.finish().await;
}

#[tokio::test]
async fn only_a_right_signature_gets_a_body_stored() {
    let h = Harness::start(FLOW).await;
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let missing = h
        .http
        .post(h.url("/webhooks/whatsapp"))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    let wrong = h
        .http
        .post(h.url("/webhooks/whatsapp"))
        .header("x-hub-signature-256", sign("not-our-secret", body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let error: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(error["error"]["code"], "bad_signature");
    assert_eq!(h.running.store().flagged_inbox(10).await.unwrap().len(), 0);
    assert_eq!(h.post_signed(body).await.status(), 200);
    h.settle().await;
    h.finish().await;
}

#[tokio::test]
async fn a_message_opens_a_card_and_its_greeting_reaches_whatsapp() {
    let h = Harness::start(FLOW).await;
    assert_eq!(
        h.customer_says(MARIA, "Maria", "wamid.in.1", "Oi, preciso de ajuda")
            .await,
        200
    );
    let sent = h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].phone_number_id, common::NUMBER_ID);
    assert_eq!(sent[0].body["to"], MARIA);
    assert_eq!(sent[0].body["text"]["body"], "Olá Maria!");
    // An automatic greeting is not the team answering: still yellow.
    let card = h
        .card_when(1, |c| c.last_responder.as_deref() == Some("customer"))
        .await;
    assert_eq!(card.status, "new");
    // The sent message carries Meta's wamid, and statuses come back onto it.
    let wamid = sent[0].wamid.clone().expect("the fake answered a wamid");
    let store = h.running.store().clone();
    let w = wamid.clone();
    assert!(
        h.running
            .until(Duration::from_secs(20), || {
                let (store, w) = (store.clone(), w.clone());
                async move { store.message_status(&w).await.ok().flatten().is_some() }
            })
            .await
    );
    assert_eq!(h.status(&wamid, "read", None).await, 200);
    assert_eq!(h.status(&wamid, "delivered", None).await, 200);
    h.settle().await;
    assert_eq!(
        store.message_status(&wamid).await.unwrap().unwrap().0,
        "read"
    );
    let history = store.history(card.id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.what == "reply sent" && e.cause.contains("greet")),
        "{history:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn the_same_message_twice_changes_nothing() {
    let h = Harness::start(FLOW).await;
    assert_eq!(
        h.customer_says(MARIA, "Maria", "wamid.dup", "Oi").await,
        200
    );
    // Meta retries with the same message in another body (another timestamp).
    let body = switchboard_whatsapp::webhook::text_message_body(
        &common::metadata(),
        MARIA,
        "Maria",
        "wamid.dup",
        1_790_000_999,
        "Oi",
    );
    assert_eq!(h.post_signed(body.as_bytes()).await.status(), 200);
    assert_eq!(
        h.customer_says(MARIA, "Maria", "wamid.dup", "Oi").await,
        200
    );
    h.settle().await;
    let card = h.card_when(1, |_| true).await;
    let inbound = h
        .running
        .store()
        .messages(card.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == "in")
        .count();
    assert_eq!(inbound, 1);
    assert!(
        h.running
            .metrics()
            .duplicate_messages
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    h.finish().await;
}

#[tokio::test]
async fn three_megabytes_are_accepted_and_one_byte_more_is_413() {
    let h = Harness::start(FLOW).await;
    let limit = switchboard_server::config::DEFAULT_WEBHOOK_MAX_BYTES;
    let head = br#"{"object":"whatsapp_business_account","entry":[],"pad":""#;
    let tail = br#""}"#;
    let mut body = head.to_vec();
    body.resize(limit - tail.len(), b'x');
    body.extend_from_slice(tail);
    assert_eq!(body.len(), limit);
    assert_eq!(h.post_signed(&body).await.status(), 200);
    let mut over = body.clone();
    over.insert(head.len(), b'y');
    assert_eq!(over.len(), limit + 1);
    assert_eq!(h.post_signed(&over).await.status(), 413);
    h.finish().await;
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_answered_400_stored_and_flagged() {
    let h = Harness::start(FLOW).await;
    let bad = b"{\"object\": \"whatsapp_business_account\", \"entry\": [";
    let answer = h.post_signed(bad).await;
    assert_eq!(answer.status(), 400);
    let error: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(error["error"]["code"], "not_json");
    // The next message is not lost.
    assert_eq!(
        h.customer_says(MARIA, "Maria", "wamid.after", "Oi").await,
        200
    );
    h.settle().await;
    let flagged = h.running.store().flagged_inbox(10).await.unwrap();
    assert!(
        flagged
            .iter()
            .any(|(_, note)| note.starts_with("not a WhatsApp notification")),
        "{flagged:?}"
    );
    h.card_when(1, |_| true).await;
    h.finish().await;
}

#[tokio::test]
async fn every_payload_kind_is_stored_and_none_is_lost() {
    // The fixtures' number feeds this pipe.
    let flow = FLOW.replace("+55 11 4000-1000", "+55 11 4000-9999");
    let h = Harness::start(&flow).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../whatsapp/tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut wamids = Vec::new();
    for path in &names {
        let body = std::fs::read(path).unwrap();
        let status = h.post_signed(&body).await.status();
        assert_eq!(status, 200, "{}", path.display());
        if let Ok(n) = switchboard_whatsapp::webhook::parse(&body) {
            for u in n.updates {
                if let switchboard_whatsapp::webhook::Update::Message(m) = u {
                    if m.metadata.display_phone_number == "551140009999" {
                        wamids.push(m.id);
                    }
                }
            }
        }
    }
    h.settle().await;
    // Every message to our number is on a card, whatever its type.
    let store = h.running.store();
    let mut kept = std::collections::BTreeSet::new();
    for id in 0..50 {
        for m in store.messages(id).await.unwrap() {
            if m.direction == "in" {
                assert!(m.raw.is_some(), "message {} keeps its raw payload", m.key);
                kept.insert(m.key);
            }
        }
    }
    for w in &wamids {
        assert!(kept.contains(w), "message {w} was lost");
    }
    assert!(
        wamids.len() >= 20,
        "the fixtures hold many messages ({})",
        wamids.len()
    );
    // Account-level errors became alerts; the other number was flagged.
    let alerts = store.alerts(50).await.unwrap();
    assert!(
        alerts.iter().any(|a| a.kind == "whatsapp_error"),
        "{alerts:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_message_to_a_number_no_pipe_has_is_stored_and_flagged() {
    let h = Harness::start(FLOW).await;
    assert_eq!(
        h.customer_writes_to_an_unknown_number("wamid.x", "Oi")
            .await,
        200
    );
    h.settle().await;
    let flagged = h.running.store().flagged_inbox(10).await.unwrap();
    assert!(
        flagged[0].1.contains("+552130005000") && flagged[0].1.contains("no pipe"),
        "{flagged:?}"
    );
    assert!(h.running.store().card(0).await.unwrap().is_none());
    h.finish().await;
}

#[tokio::test]
async fn a_passing_error_is_retried_and_the_message_goes() {
    let h = Harness::start(FLOW).await;
    h.fake.script(vec![Scripted::Error {
        http_status: 400,
        code: 130429,
        message: "(#130429) Rate limit hit".into(),
    }]);
    h.customer_says(MARIA, "Maria", "wamid.r", "Oi").await;
    let sent = h.fake.wait_for_sends(2, Duration::from_secs(30)).await;
    assert_eq!(sent.len(), 2, "the refused send is tried again");
    assert!(sent[0].wamid.is_none() && sent[1].wamid.is_some());
    let store = h.running.store().clone();
    let w = sent[1].wamid.clone().unwrap();
    assert!(
        h.running
            .until(Duration::from_secs(20), || {
                let (store, w) = (store.clone(), w.clone());
                async move { store.message_status(&w).await.ok().flatten().is_some() }
            })
            .await
    );
    h.finish().await;
}

#[tokio::test]
async fn a_permanent_error_is_never_retried_and_the_card_says_why() {
    let h = Harness::start(FLOW).await;
    h.fake.script(vec![Scripted::Error {
        http_status: 400,
        code: 131026,
        message: "(#131026) Message undeliverable".into(),
    }]);
    h.customer_says(MARIA, "Maria", "wamid.p", "Oi").await;
    h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    let store = h.running.store().clone();
    assert!(
        h.running
            .until(Duration::from_secs(20), || {
                let store = store.clone();
                async move {
                    store
                        .history(0)
                        .await
                        .unwrap_or_default()
                        .iter()
                        .any(|e| e.what.starts_with("message not delivered"))
                }
            })
            .await
    );
    let out = store
        .messages(0)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.direction == "out")
        .unwrap();
    assert_eq!(out.status.as_deref(), Some("failed"));
    assert!(out.status_reason.unwrap().contains("131026"));
    assert_eq!(h.fake.sent().len(), 1, "never retried");
    h.finish().await;
}

/// A `failed` status recorded just before a crash whose engine batch was
/// lost (the status is stored on its own, the card's change in the batch):
/// when the body is processed again the status is a duplicate, and the card
/// must still learn that its message did not go — once.
#[tokio::test]
async fn a_failure_recorded_before_a_lost_batch_still_reaches_the_card_once() {
    let h = Harness::start(FLOW).await;
    h.customer_says(MARIA, "Maria", "wamid.f", "Oi").await;
    let sent = h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    let wamid = sent[0].wamid.clone().expect("accepted");
    let store = h.running.store().clone();
    assert!(
        h.running
            .until(Duration::from_secs(20), || {
                let (store, w) = (store.clone(), wamid.clone());
                async move { store.message_owner(&w).await.ok().flatten().is_some() }
            })
            .await,
        "the greeting's wamid is recorded"
    );
    // What the processor stored before the crash.
    let row = switchboard_store::StatusRow {
        wamid: wamid.clone(),
        status: "failed".into(),
        at: 1_790_000_100_000,
        reason: None,
        callback: None,
    };
    assert_eq!(
        store.apply_status(&row).await.expect("store"),
        switchboard_store::StatusOutcome::Applied
    );
    // The body comes through again (and Meta sends it once more).
    assert_eq!(h.status(&wamid, "failed", None).await, 200);
    assert_eq!(h.status(&wamid, "failed", Some("again")).await, 200);
    h.settle().await;
    let told = store
        .history(0)
        .await
        .expect("store")
        .iter()
        .filter(|e| e.what.starts_with("message not delivered"))
        .count();
    assert_eq!(told, 1, "the card says once that the greeting did not go");
    h.finish().await;
}

#[tokio::test]
async fn whatsapp_saying_the_window_is_closed_makes_the_card_ask_for_a_template() {
    let h = Harness::start(FLOW).await;
    h.fake.script(vec![Scripted::Error {
        http_status: 400,
        code: 131047,
        message: "(#131047) Re-engagement message".into(),
    }]);
    h.customer_says(MARIA, "Maria", "wamid.w", "Oi").await;
    let card = h.card_when(1, |c| c.template_needed).await;
    assert!(card.view.contains("\"template_needed\":true") || card.template_needed);
    assert_eq!(h.fake.sent().len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let h = Harness::start(FLOW).await;
    let health = h.http.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(
        (health.status().as_u16(), health.text().await.unwrap()),
        (200, "ok".to_string())
    );
    h.customer_says(MARIA, "Maria", "wamid.m", "Oi").await;
    h.settle().await;
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_webhooks_accepted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchboard_messages_processed_total 1"),
        "{metrics}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_number_named_by_its_id_in_the_workflow_routes_and_sends_by_that_id() {
    let flow = FLOW.replace(
        "number \"+55 11 4000-1000\"",
        "number \"+55 11 4000-7777\" id \"777000\"",
    );
    let h = Harness::start(&flow).await;
    // Meta's display number differs from what the workflow says; the id decides.
    let meta = switchboard_whatsapp::webhook::Metadata {
        phone_number_id: "777000".into(),
        display_phone_number: "551140001000".into(),
    };
    let body = switchboard_whatsapp::webhook::text_message_body(
        &meta,
        MARIA,
        "Maria",
        "wamid.id",
        1_790_000_000,
        "Oi",
    );
    assert_eq!(h.post_signed(body.as_bytes()).await.status(), 200);
    let sent = h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    assert_eq!(sent[0].phone_number_id, "777000");
    h.finish().await;
}

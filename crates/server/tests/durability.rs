//! What survives: a restart keeps every card and number, timers fire late
//! but once, a reload is checked first and never strands a card, and two
//! servers on one PostgreSQL database never do the same work twice.

mod common;

use common::{Harness, FLOW};
use std::time::Duration;
use switchboard_store::Backend;

const MARIA: &str = "5511987650001";
const ANA: &str = "5511987650002";

async fn history_has(h: &Harness, card: i64, what: &str) -> usize {
    h.running
        .store()
        .history(card)
        .await
        .expect("history")
        .iter()
        .filter(|e| e.what.contains(what))
        .count()
}

#[tokio::test]
async fn a_restart_keeps_cards_numbers_and_sends_nothing_twice() {
    let h = Harness::start(FLOW).await;
    h.customer_says(MARIA, "Maria", "wamid.a1", "Oi").await;
    h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    // An automatic greeting leaves the customer waiting (yellow).
    h.card_when(1, |c| c.last_responder.as_deref() == Some("customer"))
        .await;
    let h = h.restart().await;
    // Maria's next message joins her open card; Ana gets card 2.
    h.customer_says(MARIA, "Maria", "wamid.a2", "Ainda aí?")
        .await;
    h.customer_says(ANA, "Ana", "wamid.b1", "Olá").await;
    h.settle().await;
    let sent = h.fake.wait_for_sends(2, Duration::from_secs(20)).await;
    let maria = h
        .card_when(1, |c| c.last_responder.as_deref() == Some("customer"))
        .await;
    let ana = h.card_when(2, |_| true).await;
    assert_eq!((maria.contact.as_str(), ana.contact.as_str()), (MARIA, ANA));
    assert_eq!(h.running.store().messages(maria.id).await.unwrap().len(), 3);
    assert_eq!(
        sent.len(),
        2,
        "one greeting each, none sent again: {sent:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_timer_set_before_a_restart_fires_after_it_and_only_once() {
    let flow = FLOW.replace(
        "  rule greet on card.created {",
        "  rule nudge on idle 2s when status = new {\n    note \"still waiting\"\n  }\n  rule greet on card.created {",
    );
    let h = Harness::start(&flow).await;
    h.customer_says(MARIA, "Maria", "wamid.t1", "Oi").await;
    h.card_when(1, |_| true).await;
    // The timer lives only in the stored log: a new server rebuilds it.
    let h = h.restart().await;
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
                        .any(|e| e.what.contains("still waiting"))
                }
            })
            .await,
        "the idle timer fired after the restart"
    );
    let h = h.restart().await;
    h.customer_says(ANA, "Ana", "wamid.t2", "Olá").await;
    h.settle().await;
    assert_eq!(
        history_has(&h, 0, "still waiting").await,
        1,
        "fired once, not again after the second restart"
    );
    h.finish().await;
}

#[tokio::test]
async fn a_reload_with_errors_is_refused_and_the_running_workflow_stays() {
    let h = Harness::start(FLOW).await;
    std::fs::write(
        h.dir.join("support.flow"),
        FLOW.replace("status done done", "status done donee"),
    )
    .unwrap();
    let refused = h.running.reload().await.unwrap_err();
    assert!(
        refused.contains("has errors") && refused.contains("support.flow:"),
        "{refused}"
    );
    h.customer_says(MARIA, "Maria", "wamid.r1", "Oi").await;
    h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    h.finish().await;
}

#[tokio::test]
async fn a_reload_that_removes_a_status_returns_its_cards_to_the_initial_one() {
    let h = Harness::start(FLOW).await;
    let flow = FLOW.replace(
        "  rule greet on card.created {",
        "  rule wait on message.received when message.text ~ \"espera\" {\n    move waiting\n  }\n  rule greet on card.created {",
    );
    std::fs::write(h.dir.join("support.flow"), &flow).unwrap();
    h.running.reload().await.expect("the new workflow checks");
    h.customer_says(MARIA, "Maria", "wamid.s1", "pode esperar")
        .await;
    h.card_when(1, |c| c.status == "waiting").await;
    let without = FLOW
        .replace("  status waiting paused\n", "")
        .replace(
            "flow new -> doing | waiting | done",
            "flow new -> doing | done",
        )
        .replace("flow doing -> waiting | done", "flow doing -> done")
        .replace("  flow waiting -> doing | done\n", "");
    std::fs::write(h.dir.join("support.flow"), &without).unwrap();
    let done = h.running.reload().await.expect("the change is taken");
    assert!(done.contains("runs"), "{done}");
    let card = h.card_when(1, |c| c.status == "new").await;
    let history = h.running.store().history(card.id).await.unwrap();
    let last = history.last().unwrap();
    assert!(
        last.what == "moved from `waiting` to `new`"
            && last.cause.contains("no longer has status `waiting`"),
        "{last:?}"
    );
    // And after a restart (replay through both versions) it is still there.
    let h = h.restart().await;
    h.customer_says(MARIA, "Maria", "wamid.s2", "oi").await;
    h.settle().await;
    assert_eq!(h.card_when(1, |_| true).await.status, "new");
    h.finish().await;
}

#[tokio::test]
async fn a_reload_that_drops_a_pipe_with_open_cards_is_refused() {
    let h = Harness::start(FLOW).await;
    h.customer_says(MARIA, "Maria", "wamid.p1", "Oi").await;
    h.card_when(1, |_| true).await;
    let other = FLOW.replace("pipe support \"Support\"", "pipe helpdesk \"Helpdesk\"");
    std::fs::write(h.dir.join("support.flow"), other).unwrap();
    let refused = h.running.reload().await.unwrap_err();
    assert!(
        refused.contains("pipe `support` (1 open cards)"),
        "{refused}"
    );
    h.finish().await;
}

#[tokio::test]
async fn two_servers_on_one_postgres_never_process_or_send_twice() {
    let h = Harness::start_on(FLOW, Backend::Postgres).await;
    let mut config = h.config.clone();
    config.lease = Duration::from_secs(2);
    let second = switchboard_server::start(config)
        .await
        .expect("a second server");
    let http = reqwest::Client::new();
    // Webhooks reach both servers; each is stored by the one that got it.
    for i in 0..20 {
        let from = format!("55119876{i:05}");
        let body = switchboard_whatsapp::webhook::text_message_body(
            &common::metadata(),
            &from,
            "Cliente",
            &format!("wamid.two.{i}"),
            1_790_000_000 + i,
            "Oi",
        );
        let addr = if i % 2 == 0 {
            h.running.addr
        } else {
            second.addr
        };
        let answer = http
            .post(format!("http://{addr}/webhooks/whatsapp"))
            .header(
                "x-hub-signature-256",
                switchboard_whatsapp::signature::sign("test-secret", body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    let sent = h.fake.wait_for_sends(20, Duration::from_secs(30)).await;
    h.settle().await;
    let store = h.running.store();
    for n in 1..=20 {
        assert!(
            store.card_by_number("support", n).await.unwrap().is_some(),
            "card {n}"
        );
    }
    assert!(
        store.card_by_number("support", 21).await.unwrap().is_none(),
        "no card twice"
    );
    let mut to: Vec<String> = sent
        .iter()
        .map(|s| s.body["to"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    to.dedup();
    assert_eq!(
        (sent.len(), to.len()),
        (20, 20),
        "each greeting sent exactly once"
    );
    second.stop().await;
    h.finish().await;
}

fn from_ids(wamid: &str, from: Option<&str>, user_id: &str) -> String {
    let from = from
        .map(|f| format!(r#""from":"{f}","#))
        .unwrap_or_default();
    let wa_id = from.replace("\"from\"", "\"wa_id\"");
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"551140001000","phone_number_id":"106000000000042"}},"contacts":[{{"profile":{{"name":"Maria"}},{wa_id}"user_id":"{user_id}"}}],"messages":[{{{from}"from_user_id":"{user_id}","id":"{wamid}","timestamp":"1790000000","type":"text","text":{{"body":"oi"}}}}]}}}}]}}]}}"#
    )
}

#[tokio::test]
async fn a_contact_named_by_a_bsuid_then_by_a_phone_stays_on_one_card_across_restarts() {
    let h = Harness::start(FLOW).await;
    // A username user: only the business-scoped id.
    h.post_signed(from_ids("wamid.u1", None, "BR.4417029988").as_bytes())
        .await;
    h.settle().await;
    // Later the phone shows too, with the same BSUID.
    h.post_signed(from_ids("wamid.u2", Some(MARIA), "BR.4417029988").as_bytes())
        .await;
    h.settle().await;
    let h = h.restart().await;
    // After a restart, the phone alone still finds them.
    h.post_signed(
        from_ids("wamid.u3", Some(MARIA), "BR.4417029988")
            .replace(r#""from_user_id":"BR.4417029988","#, "")
            .as_bytes(),
    )
    .await;
    h.settle().await;
    let card = h.card_when(1, |_| true).await;
    assert_eq!(card.contact, "BR.4417029988");
    assert_eq!(
        inbound_on_the_only_card(&h).await,
        ["text", "text", "text"],
        "all three on one card"
    );
    h.finish().await;
}

/// The kinds of the customer's messages on card 1, after checking that no
/// second card was opened for them.
async fn inbound_on_the_only_card(h: &Harness) -> Vec<String> {
    let store = h.running.store();
    assert!(store
        .card_by_number("support", 2)
        .await
        .expect("query")
        .is_none());
    let card = h.card_when(1, |_| true).await;
    store
        .messages(card.id)
        .await
        .expect("messages")
        .iter()
        .filter(|m| m.direction == "in")
        .map(|m| m.kind.clone())
        .collect()
}

/// A `system` message as Meta sends it when a customer changes number: from
/// the old number, naming the new one (and its new BSUID).
fn changed_number(wamid: &str, old: &str, new: &str, new_user_id: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"551140001000","phone_number_id":"106000000000042"}},"messages":[{{"from":"{old}","id":"{wamid}","timestamp":"1790000100","type":"system","system":{{"body":"User {old} changed from {old} to {new}","wa_id":"{new}","user_id":"{new_user_id}","type":"user_changed_number"}}}}]}}}}]}}]}}"#
    )
}

#[tokio::test]
async fn a_customer_who_changes_number_keeps_their_card_and_replies_follow_them_across_restarts() {
    let flow = FLOW.replace(
        "rule greet on card.created {",
        "rule ack on message.received when message.text contains \"pedido\" {\n    reply \"Recebido\"\n  }\n  rule greet on card.created {",
    );
    let h = Harness::start(&flow).await;
    let new = "5511999990002";
    h.customer_says(MARIA, "Maria", "wamid.n1", "Oi").await;
    h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    h.post_signed(changed_number("wamid.n2", MARIA, new, "BR.777").as_bytes())
        .await;
    h.settle().await;
    let h = h.restart().await;
    // From the new number, after a restart: the same card, and the reply
    // goes to the new number.
    h.customer_says(new, "Maria", "wamid.n3", "Cadê meu pedido?")
        .await;
    let sent = h.fake.wait_for_sends(2, Duration::from_secs(20)).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1].body["to"], new);
    assert_eq!(sent[1].body["text"]["body"], "Recebido");
    assert_eq!(
        inbound_on_the_only_card(&h).await,
        ["text", "system", "text"],
        "all on one card"
    );
    h.finish().await;
}

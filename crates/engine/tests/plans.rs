//! The server's path (no "why not") decides exactly as the explained path
//! of `simulate` and the tests: the same effects, the same cards, the same
//! fired rules and failures. The server path passes over rules whose
//! conditions cannot hold without evaluating them, and shares comparisons
//! between rules; these tests hold it to the full evaluation.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use switchboard_engine::{Engine, Event, Inbound, LogEntry, Outcome, State};

/// Rules that share comparisons, start each other, mix `and`, `or` and
/// `not` with scripts on either side (one fails on big amounts), and test
/// what earlier rules of the same message changed.
const FLOW: &str = r#"
pipe p "P" {
  number "+55 11 4000-1000"
  hours "Mon-Fri 09:00-18:00"
  field topic: choice(a, b, c) = a
  field amount: number
  field note: text
  field vip: bool = false
  status new open initial
  status doing active
  status waiting paused
  status done done
  flow new -> doing | waiting
  flow doing -> waiting | done
  flow waiting -> doing

  rule refund on message.received when message.text ~ "refund|estorno" {
    set topic = b
  }
  rule big on message.received when message.text ~ "\\d{3,}" and topic = b {
    set amount = 500
  }
  rule small on message.received when message.text ~ "\\d" and not (message.text ~ "\\d{3,}") {
    set amount = 5
  }
  rule start on message.received when topic = b and amount > 10 {
    move doing
  }
  rule either on message.received when topic = c or script { 1000 / (card.amount - 500) > 1 } {
    note "either"
  }
  rule fails on message.received when topic != a and script { 10 / (card.amount - 500) > 0 } {
    note "divided"
  }
  rule script_first on message.received when script { 100 / (card.amount - 500) < 1 } and topic = b {
    set note = "small b"
  }
  rule hours on message.received when within hours and status = new {
    note "open"
  }
  rule not_hours on message.received when not within hours or vip = true {
    note "closed"
  }
  rule urgent on message.received when message.text ~ "urgent|asap" and topic != c {
    set topic = c
  }
  rule again on message.received when topic = c and amount > 10 {
    move waiting
  }
  rule any_move on status.changed when status in [doing, waiting] {
    note "moved"
  }
  rule to_doing on status.changed(doing) when amount >= 500 {
    set vip = true
  }
  rule topic_changed on field.changed(topic) when topic = b and amount = none {
    set amount = 20
  }
  rule vip_set on field.changed(vip) when vip = true and not (status = done) {
    set note = "vip"
  }
  rule done on message.received when message.text contains "obrigado" and status = doing {
    move done
  }
  rule idle on idle 1h when status = waiting {
    note "idle"
  }
}
"#;

const TEXTS: &[&str] = &[
    "oi",
    "quero um refund",
    "estorno 1234",
    "pedido 7",
    "urgent please",
    "obrigado",
    "",
    "ASAP refund 99",
];

/// Runs messages (from a few contacts, at times that cross business
/// hours) and waits; returns every outcome.
fn run(engine: &Engine, steps: &[(u8, u8, u16)]) -> (Vec<Outcome>, State) {
    let mut state = State::default();
    let mut now: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 11, 27, 20, 30, 0)
        .single()
        .expect("valid");
    let mut out = Vec::new();
    for (i, &(who, text, wait)) in steps.iter().enumerate() {
        now += Duration::minutes(i64::from(wait) * 13);
        out.push(engine.advance(&mut state, now));
        let event = Event::Message(Inbound {
            id: format!("m{i}"),
            from: format!("55119{:08}", who % 3),
            name: format!("Contact {who}"),
            to: "+55 11 4000-1000".into(),
            kind: "text".into(),
            text: Some(TEXTS[usize::from(text) % TEXTS.len()].into()),
        });
        out.push(engine.step(&mut state, event, now));
    }
    (out, state)
}

/// The log entries the server path keeps: fired rules and failures.
fn kept(log: &[LogEntry], failures: &[String]) -> Vec<String> {
    log.iter()
        .filter(|e| e.fired || failures.contains(&e.reason))
        .map(|e| format!("{} {} {} {}", e.rule, e.origin, e.fired, e.reason))
        .collect()
}

fn same_decisions(flow: &str, steps: &[(u8, u8, u16)]) {
    let explained = common::engine_for(flow);
    let quiet = common::engine_for(flow).with_explanations(false);
    let (a, state_a) = run(&explained, steps);
    let (b, state_b) = run(&quiet, steps);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            serde_json::to_string(&x.effects).expect("json"),
            serde_json::to_string(&y.effects).expect("json")
        );
        // Every entry of the quiet log is a fired rule or a failure.
        let failures: Vec<String> = y
            .log
            .iter()
            .filter(|e| !e.fired)
            .map(|e| e.reason.clone())
            .collect();
        assert!(failures.iter().all(|f| f.starts_with("script failed")));
        assert_eq!(kept(&x.log, &failures), kept(&y.log, &failures));
    }
    for c in 0..state_a.cards.len() {
        assert_eq!(
            switchboard_engine::view::card_json(&state_a, c, true),
            switchboard_engine::view::card_json(&state_b, c, true)
        );
    }
}

#[test]
fn the_server_path_fires_and_fails_as_the_explained_path() {
    // Every text once, from one contact: refunds, big amounts (the failing
    // script), moves that start more rules.
    let steps: Vec<(u8, u8, u16)> = (0..TEXTS.len() as u8).map(|t| (0, t, 1)).collect();
    same_decisions(FLOW, &steps);
    // Something fired and something failed, or the test proves little.
    let engine = common::engine_for(FLOW).with_explanations(false);
    let (outcomes, _) = run(&engine, &steps);
    let log: Vec<&LogEntry> = outcomes.iter().flat_map(|o| &o.log).collect();
    assert!(log.iter().any(|e| e.fired && e.rule == "start"));
    assert!(log.iter().any(|e| e.fired && e.rule == "to_doing"));
    assert!(log.iter().any(|e| !e.fired && e.rule == "fails"));
    // A script that fails before a false comparison still runs, and fails.
    assert!(outcomes[1]
        .log
        .iter()
        .any(|e| !e.fired && e.rule == "script_first"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_messages_decide_the_same_on_both_paths(
        steps in prop::collection::vec((any::<u8>(), any::<u8>(), 0u16..200), 1..30)
    ) {
        same_decisions(FLOW, &steps);
    }
}

/// The server shares one engine between its tasks: the plans keep it so.
#[test]
fn an_engine_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Engine>();
}

//! The triggers, conditions, actions and assignment modes the other engine
//! tests do not reach: `message.sent`, `card.assigned`, any
//! `status.changed`, `contains`, `not in`, `<`, `unassign`, `webhook`,
//! `notify manager`, `reply template`, `sticky`, `least_busy` ties.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use switchboard_engine::{EffectKind, Engine, Event, Inbound, Outcome, ReplyBody, State};

const FLOW: &str = r#"
pipe p "P" {
  number "+55 11 4000-1000"
  field tag: text
  field score: number = 10
  field level: choice(a, b, c) = a
  status new open initial
  status doing active
  status done done final
  team t { ana@acme.com bruno@acme.com }
  rule sent on message.sent {
    set tag = "answered"
  }
  rule assigned on card.assigned when assignee = bruno@acme.com {
    webhook "https://crm.example/assigned"
  }
  rule any_move on status.changed {
    notify manager "card #{{ card.number }} is now {{ card.status }}"
  }
  rule words on message.received when message.text contains "CANCEL" and level not in [b, c] {
    set level = b
  }
  rule low on field.changed(score) when score < 5 {
    unassign
    reply template "low_score" language "pt_BR" params [contact.name, "{{ card.fields.score }}"]
  }
  rule back on message.received {
    assign t sticky
  }
}
"#;

fn engine() -> Engine {
    common::engine_for(FLOW)
}

fn t(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid")
        + Duration::minutes(m)
}

fn msg(e: &Engine, s: &mut State, from: &str, text: &str, at: DateTime<Utc>) -> Outcome {
    let m = Inbound {
        id: format!("{from}-{at}"),
        from: from.into(),
        name: "Maria".into(),
        to: "+55 11 4000-1000".into(),
        kind: "text".into(),
        text: Some(text.into()),
    };
    e.step(s, Event::Message(m), at)
}

fn field(s: &State, card: usize, name: &str) -> String {
    s.cards[card]
        .fields
        .get(name)
        .map(|v| format!("{v:?}"))
        .unwrap_or_default()
}

#[test]
fn sending_assigning_and_moving_start_their_rules() {
    let e = engine();
    let mut s = State::default();
    msg(&e, &mut s, "551190000001", "Oi", t(0));
    // `back` assigns in turn: ana first (nobody served this contact yet).
    assert_eq!(s.cards[0].assignee.as_deref(), Some("ana@acme.com"));
    let out = e.step(
        &mut s,
        Event::Reply {
            card: 0,
            agent: "ana@acme.com".into(),
            body: ReplyBody::Text("Olá".into()),
        },
        t(1),
    );
    assert_eq!(field(&s, 0, "tag"), "Text(\"answered\")");
    assert!(out.log.iter().any(|l| l.rule == "sent" && l.fired));
    let out = e.step(
        &mut s,
        Event::Assign {
            card: 0,
            agent: "ana@acme.com".into(),
            to: switchboard_engine::AssignTo::Agent("bruno@acme.com".into()),
        },
        t(2),
    );
    assert!(out.effects.iter().any(
        |x| matches!(&x.kind, EffectKind::Webhook { url } if url == "https://crm.example/assigned")
    ));
    let out = e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "bruno@acme.com".into(),
            status: "doing".into(),
        },
        t(3),
    );
    let notified = out.effects.iter().find_map(|x| match &x.kind {
        EffectKind::Notify { to, text } => Some((to.clone(), text.clone())),
        _ => None,
    });
    assert_eq!(
        notified,
        Some((
            vec!["managers of p".to_string()],
            "card #1 is now doing".to_string()
        ))
    );
}

#[test]
fn contains_ignores_case_and_not_in_excludes() {
    let e = engine();
    let mut s = State::default();
    msg(&e, &mut s, "551190000001", "please cancel my order", t(0));
    assert_eq!(field(&s, 0, "level"), "Text(\"b\")");
    // Already `b`: `not in [b, c]` is false, so nothing changes and the log says why.
    let fields = [("level".to_string(), serde_json::json!("c"))]
        .into_iter()
        .collect();
    e.step(
        &mut s,
        Event::Set {
            card: 0,
            agent: "ana@acme.com".into(),
            fields,
        },
        t(1),
    );
    let out = msg(&e, &mut s, "551190000001", "CANCEL!", t(2));
    let words = out
        .log
        .iter()
        .find(|l| l.rule == "words")
        .expect("looked at");
    assert!(
        !words.fired && words.reason.contains("level not in [b, c]"),
        "{words:?}"
    );
}

#[test]
fn unassign_and_template_replies_follow_a_low_score() {
    let e = engine();
    let mut s = State::default();
    msg(&e, &mut s, "551190000001", "Oi", t(0));
    assert!(s.cards[0].assignee.is_some());
    let fields = [("score".to_string(), serde_json::json!(3))]
        .into_iter()
        .collect();
    let out = e.step(
        &mut s,
        Event::Set {
            card: 0,
            agent: "ana@acme.com".into(),
            fields,
        },
        t(1),
    );
    assert_eq!(s.cards[0].assignee, None);
    let sent = out.effects.iter().find_map(|x| match &x.kind {
        EffectKind::Send {
            template: Some(name),
            params,
            ..
        } => Some((name.clone(), params.clone())),
        _ => None,
    });
    assert_eq!(
        sent,
        Some((
            "low_score".to_string(),
            vec!["Maria".to_string(), "3".to_string()]
        ))
    );
}

#[test]
fn sticky_gives_a_returning_contact_the_agent_who_served_them() {
    let e = engine();
    let mut s = State::default();
    // Card 1 for Maria goes to ana (first in turn); card 2 for João to bruno.
    msg(&e, &mut s, "551190000001", "Oi", t(0));
    msg(&e, &mut s, "551190000002", "Oi", t(1));
    assert_eq!(s.cards[1].assignee.as_deref(), Some("bruno@acme.com"));
    // Bruno answers Maria, then her card is finished.
    e.step(
        &mut s,
        Event::Reply {
            card: 0,
            agent: "bruno@acme.com".into(),
            body: ReplyBody::Text("Oi".into()),
        },
        t(2),
    );
    e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "bruno@acme.com".into(),
            status: "done".into(),
        },
        t(3),
    );
    // Maria comes back: a new card, and round robin would give ana; sticky gives bruno.
    msg(&e, &mut s, "551190000001", "Voltei", t(4));
    assert_eq!(s.cards.len(), 3);
    assert_eq!(s.cards[2].assignee.as_deref(), Some("bruno@acme.com"));
    let why = s.cards[2]
        .history
        .iter()
        .find(|h| h.what.starts_with("assigned to bruno"))
        .map(|h| h.what.clone());
    assert!(why.is_some(), "{:?}", s.cards[2].history);
}

//! The engine on a virtual clock: messages to cards, rules, assignment,
//! the 24-hour window, chains, and the reasons it records.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use switchboard_engine::{AssignTo, EffectKind, Engine, Event, Inbound, ReplyBody, State};

const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  timezone "America/Sao_Paulo"
  hours "Mon-Fri 09:00-18:00"
  field priority: choice(low, normal, high) = normal
  field topic: choice(billing, other) = other
  field amount: number
  status new open initial
  status doing active
  status waiting paused
  status done done
  status closed closed final
  flow new -> doing | waiting | done
  flow doing -> waiting | done
  flow waiting -> doing | done
  flow done -> closed
  team front { ana@acme.com bruno@acme.com carla@acme.com }
  team billing { davi@acme.com elisa@acme.com }
  route territory by contact.phone {
    "+5511" -> front
    else -> billing
  }
  rule greet on card.created {
    assign territory round_robin available
    reply "Olá {{ contact.name }}! Card #{{ card.number }}"
  }
  rule refund on message.received when message.text ~ "refund|reembolso" {
    set topic = billing
    assign billing least_busy
  }
  rule back on message.received when status = waiting {
    move doing
  }
  rule big on field.changed(amount) when amount > 1000 {
    set priority = high
    note "big order: {{ card.fields.amount }}"
  }
  rule vip on card.created when script { contact.name.starts_with("Dr") } {
    set priority = high
  }
}

pipe sales "Sales" {
  number "+55 11 4000-2000"
  status lead open initial
  status won done final
  team closers { rafa@acme.com }
  rule ping on field.changed(n) {
    set n = script { card.n + 1 }
  }
  field n: number = 0
}
"#;

fn engine() -> Engine {
    common::engine_for(FLOW)
}

fn t(min: i64) -> DateTime<Utc> {
    // Monday 2026-11-23 12:00 UTC = 09:00 in São Paulo.
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid")
        + Duration::minutes(min)
}

fn msg(from: &str, name: &str, to: &str, text: &str, id: &str) -> Event {
    Event::Message(Inbound {
        id: id.into(),
        from: from.into(),
        name: name.into(),
        to: to.into(),
        kind: "text".into(),
        text: Some(text.into()),
    })
}

fn online(e: &Engine, s: &mut State, who: &[&str]) {
    for w in who {
        e.step(
            s,
            Event::Agent {
                email: w.to_string(),
                online: Some(true),
                capacity: Some(2),
            },
            t(0),
        );
    }
}

#[test]
fn a_message_from_a_new_contact_opens_a_card_and_the_next_joins_it() {
    let e = engine();
    let mut s = State::default();
    online(&e, &mut s, &["ana@acme.com"]);
    let out = e.step(
        &mut s,
        msg("5511987650001", "Maria", "+55 11 4000-1000", "Oi", "w1"),
        t(1),
    );
    assert!(out
        .effects
        .iter()
        .any(|x| matches!(&x.kind, EffectKind::CardOpened { number: 1, .. })));
    e.step(
        &mut s,
        msg("5511987650001", "Maria", "551140001000", "Tudo bem?", "w2"),
        t(2),
    );
    assert_eq!(s.cards.len(), 1);
    assert_eq!(s.cards[0].messages.len(), 3, "two in, one greeting out");
    // A second number feeds its own pipe, numbered from 1.
    e.step(
        &mut s,
        msg(
            "5511987650001",
            "Maria",
            "+55 11 4000-2000",
            "Quero comprar",
            "w3",
        ),
        t(3),
    );
    assert_eq!((s.cards[1].pipe.as_str(), s.cards[1].number), ("sales", 1));
}

#[test]
fn rules_greet_route_and_assign_in_turn_with_reasons() {
    let e = engine();
    let mut s = State::default();
    online(&e, &mut s, &["ana@acme.com", "bruno@acme.com"]);
    let out = e.step(
        &mut s,
        msg("5511900000001", "Maria", "+55 11 4000-1000", "Oi", "a"),
        t(1),
    );
    let send = out.effects.iter().find_map(|x| match &x.kind {
        EffectKind::Send { text, .. } => text.clone(),
        _ => None,
    });
    assert_eq!(send.as_deref(), Some("Olá Maria! Card #1"));
    e.step(
        &mut s,
        msg("5511900000002", "João", "+55 11 4000-1000", "Oi", "b"),
        t(2),
    );
    let out = e.step(
        &mut s,
        msg("5511900000003", "Rita", "+55 11 4000-1000", "Oi", "c"),
        t(3),
    );
    let assignees: Vec<_> = s
        .cards
        .iter()
        .map(|c| c.assignee.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        assignees,
        ["ana@acme.com", "bruno@acme.com", "ana@acme.com"]
    );
    let candidates = out
        .effects
        .iter()
        .find_map(|x| match &x.kind {
            EffectKind::Assigned { candidates, .. } => Some(candidates.clone()),
            _ => None,
        })
        .expect("assigned");
    let carla = candidates
        .iter()
        .find(|c| c.agent == "carla@acme.com")
        .expect("carla considered");
    assert!(!carla.chosen && carla.why == "not signed in", "{carla:?}");
    assert!(s.cards[2]
        .history
        .iter()
        .any(|h| h.what.contains("route `territory` sends")));
}

#[test]
fn nobody_available_means_the_queue_until_someone_comes_online() {
    let e = engine();
    let mut s = State::default();
    let out = e.step(
        &mut s,
        msg("5511900000001", "Maria", "+55 11 4000-1000", "Oi", "a"),
        t(1),
    );
    assert!(out
        .effects
        .iter()
        .any(|x| matches!(&x.kind, EffectKind::Queued { team, .. } if team == "front")));
    assert_eq!(s.cards[0].assignee, None);
    let out = e.step(
        &mut s,
        Event::Agent {
            email: "carla@acme.com".into(),
            online: Some(true),
            capacity: Some(1),
        },
        t(5),
    );
    assert_eq!(s.cards[0].assignee.as_deref(), Some("carla@acme.com"));
    assert!(out
        .effects
        .iter()
        .any(|x| matches!(&x.kind, EffectKind::Assigned { .. })));
    // Carla is now at capacity: the next card waits.
    e.step(
        &mut s,
        msg("5511900000002", "João", "+55 11 4000-1000", "Oi", "b"),
        t(6),
    );
    assert_eq!(s.cards[1].assignee, None);
    assert_eq!(s.load_of("carla@acme.com"), 1);
}

#[test]
fn least_busy_regex_and_field_rules_chain_in_file_order() {
    let e = engine();
    let mut s = State::default();
    online(
        &e,
        &mut s,
        &["ana@acme.com", "davi@acme.com", "elisa@acme.com"],
    );
    let out = e.step(
        &mut s,
        msg(
            "5511900000001",
            "Maria",
            "+55 11 4000-1000",
            "Quero um REEMBOLSO",
            "a",
        ),
        t(1),
    );
    assert_eq!(
        s.cards[0].fields.get("topic").map(|v| format!("{v:?}")),
        Some("Text(\"billing\")".into())
    );
    assert_eq!(
        s.cards[0].assignee.as_deref(),
        Some("davi@acme.com"),
        "first of the least busy"
    );
    // The rule log says why `back` did not fire.
    let back = out
        .log
        .iter()
        .find(|l| l.rule == "back")
        .expect("back looked at");
    assert!(
        !back.fired && back.reason.contains("`status` is \"new\""),
        "{back:?}"
    );
    // An agent sets the amount; `big` fires and notes it.
    let fields = [("amount".to_string(), serde_json::json!(1500))]
        .into_iter()
        .collect();
    let out = e.step(
        &mut s,
        Event::Set {
            card: 0,
            agent: "davi@acme.com".into(),
            fields,
        },
        t(2),
    );
    assert!(out
        .effects
        .iter()
        .any(|x| matches!(&x.kind, EffectKind::Note { text } if text == "big order: 1500")));
}

#[test]
fn a_move_the_flow_forbids_is_refused_with_the_reason() {
    let e = engine();
    let mut s = State::default();
    e.step(
        &mut s,
        msg("5511900000001", "Maria", "+55 11 4000-1000", "Oi", "a"),
        t(1),
    );
    let out = e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "ana@acme.com".into(),
            status: "closed".into(),
        },
        t(2),
    );
    let reason = out
        .effects
        .iter()
        .find_map(|x| match &x.kind {
            EffectKind::Refused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("refused");
    assert_eq!(reason, "the flow does not allow `new` -> `closed`; from `new` a card can go to: doing, waiting, done");
    assert_eq!(s.cards[0].status, "new");
}

#[test]
fn free_replies_stop_when_the_24_hour_window_closes_and_templates_go_on() {
    let e = engine();
    let mut s = State::default();
    e.step(
        &mut s,
        msg("5511900000001", "Maria", "+55 11 4000-1000", "Oi", "a"),
        t(1),
    );
    let late = t(1) + Duration::hours(24);
    let out = e.step(
        &mut s,
        Event::Reply {
            card: 0,
            agent: "ana@acme.com".into(),
            body: ReplyBody::Text("Oi!".into()),
        },
        late,
    );
    assert!(out
        .effects
        .iter()
        .any(|x| matches!(&x.kind, EffectKind::Refused { what, .. } if what == "reply")));
    assert!(s.cards[0].template_needed);
    let template = ReplyBody::Template {
        name: "followup".into(),
        language: "pt_BR".into(),
        params: vec![],
    };
    let out = e.step(
        &mut s,
        Event::Reply {
            card: 0,
            agent: "ana@acme.com".into(),
            body: template,
        },
        late,
    );
    assert!(out.effects.iter().any(|x| matches!(
        &x.kind,
        EffectKind::Send {
            template: Some(_),
            ..
        }
    )));
    assert!(!s.cards[0].template_needed);
}

#[test]
fn a_rule_that_restarts_itself_is_cut_off_and_recorded() {
    let e = engine();
    let mut s = State::default();
    e.step(
        &mut s,
        msg("5511900000001", "Maria", "+55 11 4000-2000", "Oi", "a"),
        t(1),
    );
    let fields = [("n".to_string(), serde_json::json!(1))]
        .into_iter()
        .collect();
    let out = e.step(
        &mut s,
        Event::Set {
            card: 0,
            agent: "rafa@acme.com".into(),
            fields,
        },
        t(2),
    );
    assert!(out
        .effects
        .iter()
        .any(|x| matches!(x.kind, EffectKind::ChainCut { .. })));
    assert!(s.cards[0]
        .history
        .iter()
        .any(|h| h.what.contains("was cut off")));
    let n = s.cards[0].fields.get("n").map(|v| format!("{v:?}"));
    assert_eq!(
        n.as_deref(),
        Some("Number(10.0)"),
        "1 set by the agent, then 9 more by the rule"
    );
}

#[test]
fn a_script_condition_reads_the_contact() {
    let e = engine();
    let mut s = State::default();
    e.step(
        &mut s,
        msg("5511900000001", "Dra. Ana", "+55 11 4000-1000", "Oi", "a"),
        t(1),
    );
    e.step(
        &mut s,
        msg("5511900000002", "Maria", "+55 11 4000-1000", "Oi", "b"),
        t(2),
    );
    let p = |i: usize| s.cards[i].fields.get("priority").map(|v| format!("{v:?}"));
    assert_eq!(p(0).as_deref(), Some("Text(\"high\")"));
    assert_eq!(p(1).as_deref(), Some("Text(\"normal\")"));
}

#[test]
fn agents_assign_and_unknown_numbers_are_refused() {
    let e = engine();
    let mut s = State::default();
    let out = e.step(
        &mut s,
        msg("5511900000001", "Maria", "+55 11 9999-9999", "Oi", "a"),
        t(1),
    );
    assert!(s.cards.is_empty());
    assert!(out.effects.iter().any(
        |x| matches!(&x.kind, EffectKind::Refused { reason, .. } if reason.contains("no pipe"))
    ));
    e.step(
        &mut s,
        msg("5511900000001", "Maria", "+55 11 4000-1000", "Oi", "b"),
        t(2),
    );
    e.step(
        &mut s,
        Event::Assign {
            card: 0,
            agent: "ana@acme.com".into(),
            to: AssignTo::Agent("bruno@acme.com".into()),
        },
        t(3),
    );
    assert_eq!(s.cards[0].assignee.as_deref(), Some("bruno@acme.com"));
}

#[test]
fn the_same_events_give_the_same_effects() {
    let run = || {
        let e = engine();
        let mut s = State::default();
        online(&e, &mut s, &["ana@acme.com", "davi@acme.com"]);
        let mut all = Vec::new();
        for (i, text) in ["Oi", "reembolso", "obrigado"].iter().enumerate() {
            let out = e.step(
                &mut s,
                msg(
                    "5511900000001",
                    "Maria",
                    "+55 11 4000-1000",
                    text,
                    &format!("m{i}"),
                ),
                t(i as i64),
            );
            all.push(serde_json::to_string(&out).expect("json"));
        }
        all
    };
    assert_eq!(run(), run());
}

#[test]
fn a_card_on_a_status_the_new_workflow_lacks_returns_to_the_initial_status() {
    let e = engine();
    let mut s = State::default();
    e.step(
        &mut s,
        msg("5511987650001", "Maria", "+55 11 4000-1000", "oi", "w1"),
        t(0),
    );
    e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "ana@acme.com".into(),
            status: "waiting".into(),
        },
        t(1),
    );
    // The department head removes `waiting` (and the moves into it).
    let edited = FLOW
        .replace("  status waiting paused\n", "")
        .replace("new -> doing | waiting | done", "new -> doing | done")
        .replace("doing -> waiting | done", "doing -> done")
        .replace("  flow waiting -> doing | done\n", "")
        .replace("when status = waiting", "when status = doing");
    let e2 = common::engine_for(&edited);
    let out = e2.adopt(&mut s, t(2));
    assert_eq!(s.cards[0].status, "new");
    assert!(out.effects.iter().any(
        |x| matches!(&x.kind, EffectKind::Moved { from, to } if from == "waiting" && to == "new")
    ));
    let last = s.cards[0].history.last().expect("history");
    assert!(
        last.cause
            .to_string()
            .contains("no longer has status `waiting`"),
        "{}",
        last.cause
    );
    // A second adoption changes nothing.
    assert!(e2.adopt(&mut s, t(3)).effects.is_empty());
}

#[test]
fn whatsapp_closing_the_window_makes_the_card_ask_for_a_template() {
    let e = engine();
    let mut s = State::default();
    e.step(
        &mut s,
        msg("5511987650001", "Maria", "+55 11 4000-1000", "oi", "w1"),
        t(0),
    );
    let sent = s.cards[0]
        .messages
        .iter()
        .find(|m| m.id.starts_with("out-"))
        .expect("greeting")
        .id
        .clone();
    e.step(
        &mut s,
        Event::Undeliverable {
            card: 0,
            message: sent.clone(),
            reason: "(#131047) Re-engagement message".into(),
            window_closed: true,
        },
        t(1),
    );
    assert!(s.cards[0].template_needed);
    let m = s.cards[0]
        .messages
        .iter()
        .find(|m| m.id == sent)
        .expect("message");
    assert_eq!(m.status.as_deref(), Some("failed"));
    // Our clock said the window was open; WhatsApp wins: free text is refused now.
    let out = e.step(
        &mut s,
        Event::Reply {
            card: 0,
            agent: "ana@acme.com".into(),
            body: ReplyBody::Text("oi?".into()),
        },
        t(2),
    );
    assert!(out
        .effects
        .iter()
        .any(|x| matches!(&x.kind, EffectKind::Refused { what, .. } if what == "reply")));
}

#[test]
fn events_round_trip_through_json_for_the_servers_log() {
    let events = vec![
        msg("5511987650001", "Maria", "+55 11 4000-1000", "oi", "w1"),
        Event::Assign {
            card: 0,
            agent: "ana@acme.com".into(),
            to: AssignTo::Team("front".into()),
        },
        Event::Reply {
            card: 0,
            agent: "a".into(),
            body: ReplyBody::Template {
                name: "x".into(),
                language: "pt_BR".into(),
                params: vec!["1".into()],
            },
        },
    ];
    for e in events {
        let json = serde_json::to_string(&e).expect("serialises");
        let back: Event = serde_json::from_str(&json).expect("reads back");
        assert_eq!(serde_json::to_string(&back).expect("again"), json);
    }
}

#[test]
fn a_view_shows_the_cards_its_filter_keeps_in_its_order() {
    let flow = FLOW.replace(
        "pipe sales \"Sales\" {",
        "pipe sales \"Sales\" {\n  view big \"Big\" {\n    where n > 1\n    sort by n desc\n  }",
    );
    let e = common::engine_for(&flow);
    let mut s = State::default();
    for (i, from) in ["5511900000001", "5511900000002", "5511900000003"]
        .iter()
        .enumerate()
    {
        e.step(
            &mut s,
            msg(from, "C", "+55 11 4000-2000", "oi", &format!("w{i}")),
            t(i as i64),
        );
    }
    for (card, n) in [(0, 5), (1, 1), (2, 9)] {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("n".to_string(), serde_json::json!(n));
        e.step(
            &mut s,
            Event::Set {
                card,
                agent: "rafa@acme.com".into(),
                fields,
            },
            t(10),
        );
    }
    // `ping` adds one on every change of n: 6, 2, 10.
    assert_eq!(e.view(&mut s, "sales", "big", t(11)), Some(vec![2, 0, 1]));
    assert_eq!(e.view(&mut s, "sales", "nope", t(11)), None);
    assert_eq!(e.view(&mut s, "support", "big", t(11)), None);
}

//! SLA clocks, idle and window timers on a virtual clock: business hours
//! across a weekend, pauses, `when` overrides, warnings and breaches at
//! their exact instants.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use switchboard_engine::{EffectKind, Engine, Event, Inbound, ReplyBody, State};

const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  timezone "America/Sao_Paulo"
  hours "Mon-Fri 09:00-18:00"
  field priority: choice(low, normal, high) = normal
  status new open initial
  status doing active
  status waiting paused
  status done done
  status closed closed final
  flow new -> doing | waiting | done
  flow doing -> waiting | done
  flow waiting -> doing | done
  flow done -> closed
  team front { ana@acme.com }
  sla first_response 15m business warn 10m
  sla next_response 1h
  sla resolution 8h business
  sla resolution 2h business when priority = high
  rule late on sla.breached(first_response) {
    note "late!"
  }
  rule autoclose on idle 2d when status = done {
    move closed
  }
  rule last_call on window.closing 1h {
    note "window closes in an hour"
  }
  every "0 8 * * Mon-Fri" {
    notify team front "{{ count(status='new') }} new cards"
  }
  every "0 18 * * Mon-Fri" when status = waiting {
    note "still waiting at the end of the day"
  }
}
"#;

fn engine() -> Engine {
    common::engine_for(FLOW)
}

/// Local São Paulo time (UTC-3) on a day of November 2026.
fn sp(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, h + 3, m, 0)
        .single()
        .expect("valid")
}

fn write(e: &Engine, s: &mut State, at: DateTime<Utc>, text: &str) {
    let m = Inbound {
        id: format!("m{}", at.timestamp()),
        from: "5511900000001".into(),
        name: "Maria".into(),
        to: "+55 11 4000-1000".into(),
        kind: "text".into(),
        text: Some(text.into()),
    };
    e.advance(s, at);
    e.step(s, Event::Message(m), at);
}

fn sla_effects(out: &switchboard_engine::Outcome) -> Vec<(String, String)> {
    out.effects
        .iter()
        .filter_map(|x| match &x.kind {
            EffectKind::Sla { kind, state } => Some((kind.clone(), state.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn first_response_counts_business_hours_across_the_weekend_and_breaches_on_time() {
    let e = engine();
    let mut s = State::default();
    // Friday 2026-11-27 17:55: five business minutes left today.
    write(&e, &mut s, sp(27, 17, 55), "Oi");
    let card = &s.cards[0];
    let fr = card
        .clocks
        .iter()
        .find(|c| c.kind == switchboard_lang::model::SlaKind::FirstResponse)
        .expect("clock");
    assert_eq!(fr.warn_at, Some(sp(30, 9, 5)), "warns Monday 09:05");
    assert_eq!(fr.due_at, Some(sp(30, 9, 10)), "breaches Monday 09:10");
    // Nothing happens over the weekend.
    let out = e.advance(&mut s, sp(30, 9, 4));
    assert!(sla_effects(&out).is_empty());
    let out = e.advance(&mut s, sp(30, 12, 0));
    assert_eq!(
        sla_effects(&out),
        [
            ("first_response".into(), "warning".into()),
            ("first_response".into(), "breached".into())
        ]
    );
    assert_eq!(
        s.cards[0].sla.as_ref().map(|v| v.state.as_str()),
        Some("breached")
    );
    // The rule on the breach fired, at the breach's instant.
    assert!(s.cards[0]
        .history
        .iter()
        .any(|h| h.what == "note: late!" && h.at == sp(30, 9, 10)));
}

#[test]
fn an_agent_reply_stops_the_first_response_clock() {
    let e = engine();
    let mut s = State::default();
    write(&e, &mut s, sp(23, 10, 0), "Oi");
    e.step(
        &mut s,
        Event::Reply {
            card: 0,
            agent: "ana@acme.com".into(),
            body: ReplyBody::Text("Olá!".into()),
        },
        sp(23, 10, 5),
    );
    let out = e.advance(&mut s, sp(24, 10, 0));
    assert!(
        !sla_effects(&out).iter().any(|(k, _)| k == "first_response"),
        "{out:?}"
    );
    // The customer writes again: the next-response clock (wall clock, 1h) starts.
    write(&e, &mut s, sp(24, 10, 0), "E aí?");
    let nr = s.cards[0]
        .clocks
        .iter()
        .find(|c| c.kind == switchboard_lang::model::SlaKind::NextResponse)
        .expect("clock");
    assert_eq!(nr.due_at, Some(sp(24, 11, 0)));
}

#[test]
fn a_paused_status_stops_the_clock_and_resuming_moves_the_due_time() {
    let e = engine();
    let mut s = State::default();
    write(&e, &mut s, sp(23, 10, 0), "Oi");
    e.step(
        &mut s,
        Event::Reply {
            card: 0,
            agent: "ana@acme.com".into(),
            body: ReplyBody::Text("Olá!".into()),
        },
        sp(23, 10, 1),
    );
    let due = |s: &State| {
        s.cards[0]
            .clocks
            .iter()
            .find(|c| c.kind == switchboard_lang::model::SlaKind::Resolution)
            .and_then(|c| c.due_at)
    };
    assert_eq!(due(&s), Some(sp(23, 18, 0)), "8 business hours from 10:00");
    e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "ana@acme.com".into(),
            status: "waiting".into(),
        },
        sp(23, 12, 0),
    );
    assert_eq!(due(&s), None, "paused: no due time");
    assert_eq!(s.cards[0].sla.as_ref().and_then(|v| v.due_at), None);
    e.advance(&mut s, sp(24, 12, 0));
    e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "ana@acme.com".into(),
            status: "doing".into(),
        },
        sp(24, 12, 0),
    );
    // 2h were spent before the pause: 6 business hours left from Tuesday 12:00.
    assert_eq!(due(&s), Some(sp(24, 18, 0)));
    // Resumed at 17:00 instead, the rest spills into Wednesday morning.
    e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "ana@acme.com".into(),
            status: "waiting".into(),
        },
        sp(24, 12, 0),
    );
    e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "ana@acme.com".into(),
            status: "doing".into(),
        },
        sp(24, 17, 0),
    );
    assert_eq!(due(&s), Some(sp(25, 14, 0)));
}

#[test]
fn a_when_override_applies_and_follows_a_field_change() {
    let e = engine();
    let mut s = State::default();
    write(&e, &mut s, sp(23, 10, 0), "Oi");
    let res = |s: &State| {
        s.cards[0]
            .clocks
            .iter()
            .find(|c| c.kind == switchboard_lang::model::SlaKind::Resolution)
            .and_then(|c| c.due_at)
    };
    assert_eq!(res(&s), Some(sp(23, 18, 0)));
    let fields = [("priority".to_string(), serde_json::json!("high"))]
        .into_iter()
        .collect();
    e.step(
        &mut s,
        Event::Set {
            card: 0,
            agent: "ana@acme.com".into(),
            fields,
        },
        sp(23, 11, 0),
    );
    assert_eq!(
        res(&s),
        Some(sp(23, 12, 0)),
        "2 business hours from creation"
    );
}

#[test]
fn idle_fires_after_silence_and_the_window_warns_before_it_closes() {
    let e = engine();
    let mut s = State::default();
    write(&e, &mut s, sp(23, 10, 0), "Oi");
    let out = e.advance(&mut s, sp(24, 10, 0));
    let at = out.effects.iter().find(
        |x| matches!(&x.kind, EffectKind::Note { text } if text == "window closes in an hour"),
    );
    assert!(at.is_some(), "{out:?}");
    assert!(s.cards[0]
        .history
        .iter()
        .any(|h| h.what.contains("window closes") && h.at == sp(24, 9, 0)));
    e.step(
        &mut s,
        Event::Move {
            card: 0,
            agent: "ana@acme.com".into(),
            status: "done".into(),
        },
        sp(24, 10, 0),
    );
    // Two days without a message since Monday 10:00: the card closes on Wednesday 10:00.
    e.advance(&mut s, sp(26, 9, 0));
    assert_eq!(s.cards[0].status, "closed");
    assert!(s.cards[0]
        .history
        .iter()
        .any(|h| h.what.contains("to `closed`") && h.at == sp(25, 10, 0)));
}

#[test]
fn timers_are_kept_in_order_without_scanning_cards() {
    let e = engine();
    let mut s = State::default();
    for i in 0..50u32 {
        let m = Inbound {
            id: format!("m{i}"),
            from: format!("55119000{i:05}"),
            name: "X".into(),
            to: "+55 11 4000-1000".into(),
            kind: "text".into(),
            text: Some("Oi".into()),
        };
        e.step(
            &mut s,
            Event::Message(m),
            sp(23, 10, 0) + Duration::minutes(i64::from(i)),
        );
    }
    let first = s.timers.first().cloned().expect("timers");
    assert_eq!(first.card, 0);
    let ats: Vec<_> = s.timers.iter().map(|t| t.at).collect();
    assert!(ats.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn schedules_run_in_the_pipes_time_zone_for_the_pipe_and_for_matching_cards() {
    let e = engine();
    let mut s = State::default();
    write(&e, &mut s, sp(23, 10, 0), "Oi");
    write(
        &e,
        &mut s,
        sp(23, 10, 0) + Duration::seconds(1),
        "Oi de novo",
    );
    let m = Inbound {
        id: "x".into(),
        from: "5511900000002".into(),
        name: "João".into(),
        to: "+55 11 4000-1000".into(),
        kind: "text".into(),
        text: Some("Oi".into()),
    };
    e.step(&mut s, Event::Message(m), sp(23, 11, 0));
    e.step(
        &mut s,
        Event::Move {
            card: 1,
            agent: "ana@acme.com".into(),
            status: "waiting".into(),
        },
        sp(23, 12, 0),
    );
    let out = e.advance(&mut s, sp(24, 9, 0));
    // Monday 18:00 local: only the waiting card gets the note.
    assert!(s.cards[1]
        .history
        .iter()
        .any(|h| h.what.contains("still waiting") && h.at == sp(23, 18, 0)));
    assert!(!s.cards[0]
        .history
        .iter()
        .any(|h| h.what.contains("still waiting")));
    // Tuesday 08:00 local: the team hears how many cards are new.
    let notes: Vec<_> = out
        .effects
        .iter()
        .filter_map(|x| match &x.kind {
            EffectKind::Notify { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(notes, ["1 new cards"]);
}

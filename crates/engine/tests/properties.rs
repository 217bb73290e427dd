//! The engine is deterministic (same inputs, same effects, byte for byte)
//! and never panics, whatever sequence of events arrives — including events
//! about cards that do not exist and agents nobody knows.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use switchboard_engine::{AssignTo, Engine, Event, Inbound, Outcome, ReplyBody, State};
use switchboard_lang::{check, MemoryLoader, Sources};

fn engine() -> Engine {
    let mut sources = Sources::new();
    for (path, text) in [
        (
            "workflows/support.flow",
            include_str!("../../../workflows/support.flow"),
        ),
        (
            "workflows/sales.flow",
            include_str!("../../../workflows/sales.flow"),
        ),
        (
            "workflows/hr.flow",
            include_str!("../../../workflows/hr.flow"),
        ),
        (
            "workflows/templates/helpdesk.flow",
            include_str!("../../../workflows/templates/helpdesk.flow"),
        ),
    ] {
        sources.add(path, text);
    }
    let loader = MemoryLoader(
        [
            (
                "workflows/scripts/vip.rhai",
                include_str!("../../../workflows/scripts/vip.rhai"),
            ),
            (
                "workflows/scripts/order_id.rhai",
                include_str!("../../../workflows/scripts/order_id.rhai"),
            ),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect(),
    );
    let checked = check(&mut sources, &loader);
    assert!(!checked.has_errors());
    Engine::new(checked.workflow)
}

#[derive(Debug, Clone)]
enum Step {
    Message(u8, u8, u8),
    Agent(u8, bool),
    Reply(u8, u8, bool),
    Move(u8, u8),
    Set(u8, u8),
    Assign(u8, u8),
    Wait(u16),
}

const TEXTS: &[&str] = &[
    "Oi",
    "quero um reembolso",
    "pedido 8812",
    "urgente!",
    "enterprise 500 usuários",
    "",
    "assédio",
];
const NUMBERS: &[&str] = &[
    "+55 11 4000-1000",
    "+55 11 4000-2000",
    "+55 11 4000-3000",
    "+1 555 0000",
];
const AGENTS: &[&str] = &[
    "ana@acme.com",
    "bruno@acme.com",
    "davi@acme.com",
    "rafael@acme.com",
    "rh@acme.com",
    "nobody@x.com",
];
const STATUSES: &[&str] = &[
    "in_progress",
    "waiting",
    "resolved",
    "closed",
    "qualified",
    "won",
    "working",
    "nonsense",
];
const FIELDS: &[(&str, &str)] = &[
    ("priority", "\"high\""),
    ("amount", "6000"),
    ("amount", "\"lots\""),
    ("deal_value", "90000"),
    ("urgent", "true"),
    ("nope", "1"),
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| Step::Message(a, b, c)),
        (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Step::Agent(a, b)),
        (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, c)| Step::Reply(a, b, c)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::Move(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::Set(a, b)),
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Step::Assign(a, b)),
        any::<u16>().prop_map(Step::Wait),
    ]
}

fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[usize::from(i) % list.len()]
}

/// Runs the steps and returns every outcome as JSON, plus the final cards.
fn run(steps: &[Step]) -> Vec<String> {
    run_on(&engine(), steps, |o| {
        serde_json::to_string(o).expect("json")
    })
}

/// Runs the steps on an engine; `show` writes each outcome.
fn run_on(e: &Engine, steps: &[Step], show: impl Fn(&Outcome) -> String) -> Vec<String> {
    let mut s = State::default();
    let mut now: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 11, 27, 20, 0, 0)
        .single()
        .expect("valid");
    let mut out = Vec::new();
    for (i, st) in steps.iter().enumerate() {
        now += Duration::minutes(1);
        let event = match st {
            Step::Message(who, to, text) => Event::Message(Inbound {
                id: format!("m{i}"),
                from: format!("55119{:08}", who % 12),
                name: format!("Contact {who}"),
                to: pick(NUMBERS, *to).into(),
                kind: "text".into(),
                text: Some(pick(TEXTS, *text).into()),
            }),
            Step::Agent(a, on) => Event::Agent {
                email: pick(AGENTS, *a).into(),
                online: Some(*on),
                capacity: Some(2),
            },
            Step::Reply(card, a, template) => Event::Reply {
                card: usize::from(*card % 16),
                agent: pick(AGENTS, *a).into(),
                body: if *template {
                    ReplyBody::Template {
                        name: "t".into(),
                        language: "pt_BR".into(),
                        params: vec![],
                    }
                } else {
                    ReplyBody::Text("ok".into())
                },
            },
            Step::Move(card, st) => Event::Move {
                card: usize::from(*card % 16),
                agent: "ana@acme.com".into(),
                status: pick(STATUSES, *st).into(),
            },
            Step::Set(card, f) => {
                let (name, value) = pick(FIELDS, *f);
                let fields = [(name.to_string(), serde_json::from_str(value).expect("json"))]
                    .into_iter()
                    .collect();
                Event::Set {
                    card: usize::from(*card % 16),
                    agent: "ana@acme.com".into(),
                    fields,
                }
            }
            Step::Assign(card, a) => Event::Assign {
                card: usize::from(*card % 16),
                agent: "ana@acme.com".into(),
                to: AssignTo::Agent(pick(AGENTS, *a).into()),
            },
            Step::Wait(minutes) => {
                now += Duration::minutes(i64::from(*minutes) * 7);
                out.push(show(&e.advance(&mut s, now)));
                continue;
            }
        };
        out.push(show(&e.advance(&mut s, now)));
        out.push(show(&e.step(&mut s, event, now)));
    }
    for c in 0..s.cards.len() {
        out.push(switchboard_engine::view::card_json(&s, c, true).to_string());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_never_panic_and_repeat_exactly(steps in prop::collection::vec(step(), 1..60)) {
        let first = run(&steps);
        let second = run(&steps);
        prop_assert_eq!(first, second);
    }

    /// The server's path (no "why not" for rules that did not fire) has
    /// the same effects and leaves the same cards.
    #[test]
    fn the_server_path_has_the_same_effects(steps in prop::collection::vec(step(), 1..60)) {
        let effects = |o: &Outcome| serde_json::to_string(&o.effects).expect("json");
        let explained = run_on(&engine(), &steps, effects);
        let quiet = run_on(&engine().with_explanations(false), &steps, effects);
        prop_assert_eq!(explained, quiet);
    }
}

//! One inbound message against a pipe with 1,000 rules, and the next timer
//! among 1,000,000 cards, beside baselines measured in the same run.
//!
//! Run: `cargo bench -p switchboard-engine --bench message`

use chrono::{Duration, TimeZone, Utc};
use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Instant;
use switchboard_engine::state::{Timer, TimerKind};
use switchboard_engine::{Engine, Event, Inbound, State};
use switchboard_lang::{check, MemoryLoader, Sources};

/// A support pipe with `rules` rules on incoming messages: most conditions
/// do not match; one in ten is a pattern, one in fifty a script.
fn workflow(rules: usize, scripts: bool) -> Engine {
    let mut s = String::from(
        "pipe p \"P\" {\n  number \"+55 11 4000-1000\"\n  field topic: choice(a, b, c) = a\n  field amount: number\n  status new open initial\n  status doing active\n  team t { a@x.com b@x.com }\n",
    );
    for r in 0..rules {
        match r % 50 {
            0 if scripts => s.push_str(&format!("  on message.received when script {{ card.amount > {r} }} {{\n    set topic = b\n  }}\n")),
            n if n % 10 == 1 => s.push_str(&format!(
                "  on message.received when message.text ~ \"refund{r}|estorno{r}\" {{\n    set topic = b\n  }}\n"
            )),
            n if n % 2 == 0 => s.push_str(&format!("  on message.received when topic = c and amount > {r} {{\n    move doing\n  }}\n")),
            _ => s.push_str(&format!("  on message.received when status = doing {{\n    note \"{r}\"\n  }}\n")),
        }
    }
    s.push_str("}\n");
    let mut sources = Sources::new();
    sources.add("bench.flow", s);
    let checked = check(&mut sources, &MemoryLoader::default());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
    Engine::new(checked.workflow)
}

/// Median microseconds per message over `n` messages to one open card.
fn per_message(engine: &Engine, n: usize) -> f64 {
    let mut state = State::default();
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid");
    let message = |i: usize| {
        Event::Message(Inbound {
            id: format!("m{i}"),
            from: "5511900000001".into(),
            name: "Maria".into(),
            to: "+55 11 4000-1000".into(),
            kind: "text".into(),
            text: Some("Olá, quero saber do meu pedido".into()),
        })
    };
    engine.step(&mut state, message(0), t0);
    let mut times = Vec::with_capacity(n);
    for i in 1..=n {
        let event = message(i);
        let at = t0 + Duration::seconds(i as i64);
        let start = Instant::now();
        black_box(engine.step(&mut state, event, at));
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

fn main() {
    let none = workflow(0, true);
    let base = per_message(&none, 2000);
    let explained = per_message(&workflow(1000, true), 300);
    let no_scripts = per_message(&workflow(1000, false).with_explanations(false), 1000);
    let quiet = per_message(&workflow(1000, true).with_explanations(false), 1000);
    println!("one inbound message (median of many, same card):");
    println!("  baseline: pipe without rules              {base:9.2} µs");
    println!(
        "  1,000 rules, why-not of each rule logged  {explained:9.2} µs   ({:.0} ns per rule)",
        (explained - base) * 1000.0 / 1000.0
    );
    println!("  the same without its 20 scripts           {no_scripts:9.2} µs");
    println!(
        "  1,000 rules, server path (no why-not)     {quiet:9.2} µs   ({:.0} ns per rule)   goal: at most 20 µs",
        (quiet - base) * 1000.0 / 1000.0
    );

    // The next timer among a million cards: the first of an ordered set.
    let t0 = Utc
        .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid");
    let mut timers = BTreeSet::new();
    for card in 0..1_000_000usize {
        let at = t0 + Duration::seconds(((card * 7919) % 1_000_003) as i64);
        timers.insert(Timer {
            at,
            card,
            kind: TimerKind::Idle(3600),
        });
    }
    let small: BTreeSet<Timer> = timers.iter().take(1).cloned().collect();
    let time_first = |set: &BTreeSet<Timer>| {
        let start = Instant::now();
        for _ in 0..100_000 {
            black_box(black_box(set).first());
        }
        start.elapsed().as_secs_f64() * 1e9 / 100_000.0
    };
    let one = time_first(&small);
    let million = time_first(&timers);
    let start = Instant::now();
    for i in 0..100_000usize {
        let t = Timer {
            at: t0 + Duration::seconds(i as i64),
            card: 2_000_000 + i,
            kind: TimerKind::Idle(60),
        };
        timers.insert(t.clone());
        timers.remove(&t);
    }
    let churn = start.elapsed().as_secs_f64() * 1e9 / 100_000.0;
    println!("next timer (no scan of cards):");
    println!("  baseline: set of 1 timer          {one:9.1} ns");
    println!("  set of 1,000,000 timers           {million:9.1} ns");
    println!("  insert + remove among 1,000,000   {churn:9.1} ns");
}

//! The message benchmark's workflow, for a profiler: runs messages to one
//! card and nothing else, so that callgrind counts what one message costs
//! (`docs/performance.md` has the figures).
//!
//! ```sh
//! cargo build --profile bench -p switchboard-engine --example message_profile
//! valgrind --tool=callgrind --toggle-collect='*Engine::step*' \
//!   ${CARGO_TARGET_DIR:-target}/release/examples/message_profile quiet 150
//! ```
//!
//! Variants: `none` (no rules: the baseline), `quiet` (1,000 rules, the
//! server path), `no-scripts`, `explained` (with the "why not" of each
//! rule). Per message: the count for 150 messages minus the count for 50,
//! divided by 100.

use chrono::{Duration, TimeZone, Utc};
use std::hint::black_box;
use switchboard_engine::{Engine, Event, Inbound, State};
use switchboard_lang::{check, MemoryLoader, Sources};

/// The same pipe as `benches/message.rs`.
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

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "quiet".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let engine = match variant.as_str() {
        "none" => workflow(0, true),
        "explained" => workflow(1000, true),
        "no-scripts" => workflow(1000, false).with_explanations(false),
        _ => workflow(1000, true).with_explanations(false),
    };
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
    // The first message opens the card (and compiles patterns): it cancels
    // out when two counts are subtracted.
    for i in 0..=n {
        let at = t0 + Duration::seconds(i as i64);
        black_box(engine.step(&mut state, message(i), at));
    }
    let last = engine.step(
        &mut state,
        message(n + 1),
        t0 + Duration::seconds(n as i64 + 1),
    );
    eprintln!(
        "{variant}: {} effects, {} log entries in the last step",
        last.effects.len(),
        last.log.len()
    );
}

//! How long parse + check takes on big workflows, beside baselines measured
//! in the same run (the machine is shared and noisy: compare ratios).
//!
//! Run: `cargo bench -p switchboard-lang --bench check`
//!
//! 1. The target: one pipe with 200 statuses, 100 fields, 1,000 rules.
//! 2. Scaling: the same shape at about 1k, 10k and 100k lines.
//!
//! Baselines: `pest only` is the grammar recognising the text (no tree, no
//! checks); `scan` is one pass over the bytes counting lines — the least any
//! reader of the file must do.

use std::hint::black_box;
use std::time::{Duration, Instant};
use switchboard_lang::{check, parse, FileId, MemoryLoader, Sources};

/// A pipe of the given size, with the variety a real file has.
fn generate(statuses: usize, fields: usize, rules: usize) -> String {
    let mut s = String::from(
        "pipe big \"Big\" {\n  number \"+55 11 4000-1000\"\n  timezone \"America/Sao_Paulo\"\n",
    );
    s.push_str("  hours \"Mon-Fri 09:00-18:00, Sat 09:00-13:00\"\n  holidays \"2026-12-25\", \"2027-01-01\"\n");
    for f in 0..fields {
        match f % 4 {
            0 => s.push_str(&format!(
                "  field f{f}: choice(low, normal, high) = normal\n"
            )),
            1 => s.push_str(&format!("  field f{f}: number\n")),
            2 => s.push_str(&format!("  field f{f}: text\n")),
            _ => s.push_str(&format!("  field f{f}: bool = false\n")),
        }
    }
    for st in 0..statuses {
        let kind = ["active", "paused", "active", "done"][st % 4];
        let extra = if st == 0 { " initial" } else { "" };
        s.push_str(&format!("  status s{st} {kind}{extra}\n"));
    }
    for st in 0..statuses.saturating_sub(1) {
        s.push_str(&format!(
            "  flow s{st} -> s{} | s{}\n",
            st + 1,
            (st + 7) % statuses
        ));
    }
    s.push_str(
        "  team t0 { a@acme.com b@acme.com c@acme.com }\n  team t1 { d@acme.com e@acme.com }\n",
    );
    s.push_str("  sla first_response 15m business warn 10m\n  sla resolution 8h business\n");
    s.push_str("  route r by contact.phone {\n    \"+5511\" -> t0\n    \"+5521\" -> t1\n    else -> t0\n  }\n");
    for r in 0..rules {
        let st = r % statuses;
        let next = (st + 1) % statuses;
        let f = (r % (fields / 4).max(1)) * 4;
        match r % 5 {
            0 => s.push_str(&format!(
                "  rule r{r} on message.received when message.text ~ \"word{r}|palavra{r}\" and status = s{st} {{\n    set f{f} = high\n    move s{next}\n  }}\n"
            )),
            1 => s.push_str(&format!(
                "  rule r{r} on field.changed(f{}) when f{} > {r} {{\n    assign t{} least_busy available\n  }}\n",
                f + 1,
                f + 1,
                r % 2
            )),
            2 => s.push_str(&format!(
                "  rule r{r} on card.created when f{f} in [low, normal] and not within hours {{\n    reply \"Olá {{{{ contact.name }}}}, card #{{{{ card.number }}}} ({r})\"\n  }}\n"
            )),
            3 => s.push_str(&format!(
                "  rule r{r} on sla.breached(first_response) when status = s{st} {{\n    notify team t0 \"#{{{{ card.number }}}} is late ({r})\"\n    assign r round_robin\n  }}\n"
            )),
            _ => s.push_str(&format!(
                "  rule r{r} on idle {}h when status = s{st} and f{} = true {{\n    note \"idle ({r})\"\n  }}\n",
                1 + r % 48,
                f + 3
            )),
        }
    }
    s.push_str("  view late \"Late\" {\n    where sla = breached\n    sort by due\n  }\n}\n");
    s
}

/// Median time of `f` over enough runs to take about half a second.
fn time(mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    f();
    let once = start.elapsed().max(Duration::from_micros(1));
    let runs = (Duration::from_millis(500).as_nanos() / once.as_nanos()).clamp(5, 200) as usize;
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn check_text(text: &str) -> usize {
    let mut sources = Sources::new();
    sources.add("big.flow", text);
    let checked = check(&mut sources, &MemoryLoader::default());
    assert!(
        !checked.has_errors(),
        "generated workflow must be valid: {:?}",
        checked.diagnostics.first()
    );
    checked.workflow.pipes[0].rules.len()
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // Cargo passes `--bench`; nothing else to parse.
    let target = generate(200, 100, 1000);
    let lines = target.lines().count();
    let scan = time(|| {
        black_box(black_box(&target).bytes().filter(|b| *b == b'\n').count());
    });
    let pest_only = time(|| {
        black_box(parse::recognise(black_box(&target)));
    });
    let parsed = time(|| {
        black_box(parse::parse(FileId(0), black_box(&target)));
    });
    let checked = time(|| {
        black_box(check_text(black_box(&target)));
    });
    println!(
        "target: 200 statuses, 100 fields, 1,000 rules ({lines} lines, {} KB)",
        target.len() / 1024
    );
    println!("  baseline scan (count lines)   {}", ms(scan));
    println!("  baseline pest only            {}", ms(pest_only));
    println!(
        "  parse to syntax tree          {}   ({:.1}x pest only)",
        ms(parsed),
        ratio(parsed, pest_only)
    );
    println!(
        "  parse + check                 {}   ({:.1}x pest only)   goal: under 50 ms",
        ms(checked),
        ratio(checked, pest_only)
    );
    println!();
    println!("scaling (parse + check):");
    println!(
        "  {:>8} {:>8}  {:>11}  {:>11}  {:>11}  {:>9}",
        "rules", "lines", "pest only", "parse", "parse+check", "µs/line"
    );
    for rules in [250, 2_500, 25_000] {
        let text = generate(200, 100, rules);
        let lines = text.lines().count();
        let p = time(|| {
            black_box(parse::recognise(black_box(&text)));
        });
        let t = time(|| {
            black_box(parse::parse(FileId(0), black_box(&text)));
        });
        let c = time(|| {
            black_box(check_text(black_box(&text)));
        });
        println!(
            "  {:>8} {:>8}  {}  {}  {}  {:>9.2}",
            rules,
            lines,
            ms(p),
            ms(t),
            ms(c),
            c.as_secs_f64() * 1e6 / lines as f64
        );
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

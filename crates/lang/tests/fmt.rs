//! Tests of the canonical formatter (`switchboard_lang::fmt`): a formatted
//! file means the same as the original, keeps every comment, and formatting
//! it again changes nothing.

use pest::Parser as _;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use switchboard_lang::fmt::format;
use switchboard_lang::parse::grammar::{FlowParser, Rule};
use switchboard_lang::parse::parse;
use switchboard_lang::FileId;

/// The first sketch of the language (`/tmp/sketch.flow`).
const SKETCH: &str = r#"# workflows/support.flow: customer support of ACME Brasil
pipe support "Customer Support" {
  number "+55 11 4000-1000"            # the WhatsApp number that feeds this pipe
  timezone "America/Sao_Paulo"
  hours "Mon-Fri 09:00-18:00, Sat 09:00-13:00"
  holidays "2026-12-25", "2027-01-01"

  # fields every card of this pipe carries; shown on the card and the board
  field priority: choice(low, normal, high) = normal
  field topic:    choice(billing, delivery, product, other)
  field order_id: text
  field amount:   number
  field city:     text

  # the stages of a card, each with its kind:
  #   open (nobody has touched it), active, paused (SLA clocks stop), done, closed
  status new         open   initial
  status in_progress active
  status waiting     paused           # waiting on the customer
  status resolved    done
  status closed      closed final

  # allowed moves; a pipe without these lines allows any move
  flow new         -> in_progress | waiting | resolved
  flow in_progress -> waiting | resolved
  flow waiting     -> in_progress | resolved
  flow resolved    -> closed | in_progress

  team frontline { ana@acme.com  bruno@acme.com  carla@acme.com }
  team billing   { davi@acme.com  elisa@acme.com }
  team lisbon    { fabio@acme.pt }

  # SLA windows; "business" counts only business hours; warn turns the card yellow
  sla first_response 15m business warn 10m
  sla next_response  1h  business
  sla resolution     8h  business warn 6h
  sla resolution     2h  business when priority = high

  # territory: a table that non-developers can extend line by line
  route territory by contact.phone {
    "+5511" "+5512" "+5513"  -> frontline
    "+5571" "+5581"          -> northeast
    "+351"                   -> lisbon
    else                     -> frontline
  }

  on card.created {
    assign territory round_robin available     # available = online and under capacity
  }

  on message.received when message.text ~ "refund|reembolso|estorno" {
    set topic = billing
    assign billing least_busy
  }

  on card.created when script("scripts/vip.rhai") {
    set priority = high
    reply "Olá {{ contact.name }}! Você é cliente VIP, um especialista já vai te atender."
  }

  on message.received when status = waiting {
    move in_progress
  }

  on sla.breached(first_response) {
    set priority = high
    notify team frontline "Card #{{ card.number }} from {{ contact.name }} is overdue"
  }

  on idle 7d when status = resolved {
    move closed
    reply template "csat_survey" language "pt_BR" params [contact.name]
  }

  every "0 0 8 * * Mon-Fri" {
    notify team frontline "{{ count(status = new) }} new cards are waiting"
  }

  view overdue "Overdue" { where sla = breached  sort by due }
}
"#;

/// Every construct of the grammar, with comments in every position.
const RICH: &str = r#"# Header comment of the file.
# Second header line.

# A reusable support desk.
template desk(team_name, agents = [], first = 15m, greeting = "Olá!", level) {  # params
  timezone "America/Sao_Paulo"
  hours "Mon-Fri 09:00-18:00"
  team support_team { $agents }
  sla first_response $first business warn 10m when level = $level
  on card.created {
    reply $greeting
  }
}

template premium_desk(team_name) from desk(team_name: $team_name, first: 5m,) {
}

pipe support   # the pipe's name is used in URLs
  "Customer Support"
  from desk(
    team_name: frontline,  # who answers
    agents: [ana@acme.com, bruno@acme.com],
    greeting: "Olá, \"cliente\"! # not a comment",
  ) {
  number "+55 11 4000-1000" id "1234567890"   # the number
  timezone "America/Sao_Paulo"
  hours "Mon-Fri 09:00-18:00, Sat 09:00-13:00"
  holidays "2026-12-25",   # christmas
           "2027-01-01"


  field priority: choice(low, normal, high) = normal shown
  field topic: choice(
    billing,   # money
    delivery,
  )
  field notes: text
  field vip: bool = false
  field due: date shown
  field plan: choice(starter, business, enterprise, not, and)   # keywords are values in lists

  status new open initial
  status in_progress active
  status closed closed final
  flow new -> in_progress | closed
  flow in_progress -> closed

  team frontline {
    ana@acme.com,    # lead
    bruno@acme.com
  }
  team empty_team { }

  sla resolution 2h business warn 90m
    when priority = high     # only urgent ones
      and (topic in [billing, delivery] or not (city = "São Paulo"))
  sla next_response 1h when vip = true and topic not in [delivery] and plan in [business, [or, when]]

  route territory by contact.phone {   # by phone prefix
    # São Paulo
    "+5511" "+5512" -> frontline
    [a, b] "+351"   -> lisbon   # two keys

    $extra -> frontline
    else -> frontline
    # the end of the table
  }

  route empty by topic {}

  rule vip_first on card.created when script("scripts/vip.rhai") and within hours {
    set priority = high
    set score = script { let m = #{ a: "}" }; // # hash in rhai
      m.a.len() + 1 }
    set tag = script("scripts/tag.rhai")
    assign frontline round_robin available
    note "VIP # with a hash"
  }

  on status.changed(resolved) 2h when contact.name contains "Ana" or message.text ~ "refund|estorno" {
    unassign
    move closed   # done
    reply template "csat_survey" language "pt_BR" params [contact.name, card.number]
    reply template "bye"
    notify team frontline "Card {{ card.number }} closed"
    notify manager "tab\there"
    notify agent ana@acme.com "hi"
    webhook "https://example.com/hook#fragment"
  }

  on idle 7d {
    # nothing yet
  }

  on message.received when script { card.priority == "high" } {}  # empty on purpose

  every "0 0 8 * * Mon-Fri" when status in [new, in_progress] {
    notify team frontline "{{ count(status = new) }} waiting"
  }

  view overdue "Overdue" {
    # where first
    where sla = breached and not status = closed
    sort by due desc   # newest first
  }
  view all {}
  # last words of the pipe
}   # after the pipe

pipe tiny { }
# end of file
"#;

/// Programmers' operators, which parse (the checker explains them).
const OPERATORS: &str = r#"pipe ops {
  on card.created when a = 1 && b = 2 || !c = 3 and !(d == 4) or e => 5 and !!f = 6 {
    move x
  }
  sla resolution 1h when (a = 1 || b = 2) && !within hours
}
"#;

const SAMPLES: &[(&str, &str)] = &[("sketch", SKETCH), ("rich", RICH), ("operators", OPERATORS)];

fn snapshot_inputs() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fmt");
    let mut files = Vec::new();
    collect_flow_files(&dir, &mut files);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("snapshot input is readable");
            (p.display().to_string(), text)
        })
        .collect()
}

fn collect_flow_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect_flow_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "flow") {
            out.push(p);
        }
    }
}

/// Byte ranges of strings and inline scripts: a `#` there is no comment.
fn protected(text: &str) -> Vec<(usize, usize)> {
    let pairs = FlowParser::parse(Rule::file, text).expect("text parses as a whole");
    let mut v: Vec<(usize, usize)> = pairs
        .flatten()
        .filter(|p| matches!(p.as_rule(), Rule::string | Rule::script_code))
        .map(|p| (p.as_span().start(), p.as_span().end()))
        .collect();
    v.sort_unstable();
    v
}

/// Comments as `(start, end)` byte ranges, `end` at the line end.
fn comment_ranges(text: &str) -> Vec<(usize, usize)> {
    let prot = protected(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if let Some(&(_, e)) = prot.iter().find(|(s, _)| *s == i) {
            i = e;
            continue;
        }
        if text.as_bytes()[i] == b'#' {
            let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
            out.push((i, end));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// The comments of a text, sorted, without trailing whitespace.
fn comments(text: &str) -> Vec<String> {
    let mut v: Vec<String> = comment_ranges(text)
        .into_iter()
        .map(|(s, e)| text[s..e].trim_end().to_string())
        .collect();
    v.sort();
    v
}

/// The three properties, plus the layout basics. Panics with the texts.
fn check(name: &str, text: &str) -> String {
    let (tree, diags) = parse(FileId(0), text);
    assert!(
        diags.is_empty(),
        "{name}: the input must parse: {diags:?}\n{text}"
    );
    let out = format(text).unwrap_or_else(|d| panic!("{name}: format failed: {d:?}\n{text}"));
    let (again, diags) = parse(FileId(0), &out);
    assert!(
        diags.is_empty(),
        "{name}: the output does not parse: {diags:?}\n{out}"
    );
    assert_eq!(
        again, tree,
        "{name}: the meaning changed\n--- input\n{text}\n--- output\n{out}"
    );
    assert_eq!(
        serde_json::to_value(&again).expect("tree to json"),
        serde_json::to_value(&tree).expect("tree to json"),
        "{name}: the JSON of the tree changed\n{out}"
    );
    assert_eq!(
        comments(&out),
        comments(text),
        "{name}: comments differ\n--- input\n{text}\n--- output\n{out}"
    );
    let twice = format(&out)
        .unwrap_or_else(|d| panic!("{name}: formatting the output failed: {d:?}\n{out}"));
    assert_eq!(
        twice, out,
        "{name}: formatting is not idempotent\n--- once\n{out}\n--- twice\n{twice}"
    );
    if !out.is_empty() {
        assert!(
            out.ends_with('\n') && !out.ends_with("\n\n"),
            "{name}: must end with one newline\n{out:?}"
        );
    }
    assert!(
        !out.contains("\n\n\n") && !out.starts_with('\n'),
        "{name}: extra blank lines\n{out}"
    );
    for line in out.lines() {
        assert_eq!(line, line.trim_end(), "{name}: trailing whitespace\n{out}");
    }
    out
}

#[test]
fn samples_keep_meaning_and_comments() {
    for (name, text) in SAMPLES {
        check(name, text);
    }
    for (name, text) in snapshot_inputs() {
        check(&name, &text);
    }
}

#[test]
fn workflow_files_keep_meaning_and_comments() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    assert!(dir.is_dir(), "{} should exist", dir.display());
    let mut files = Vec::new();
    collect_flow_files(&dir, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).expect("workflow file is readable");
        let name = f.display().to_string();
        let (_, diags) = parse(FileId(0), &text);
        if diags.is_empty() {
            check(&name, &text);
        } else {
            // Not the formatter's business, but it must refuse such a file.
            eprintln!("{name} does not parse; checking that it is not formatted");
            assert_eq!(
                format(&text),
                Err(diags),
                "{name}: a file that does not parse must not be formatted"
            );
        }
    }
}

#[test]
fn sketch_layout() {
    let out = check("sketch", SKETCH);
    assert!(
        out.contains("  number \"+55 11 4000-1000\"  # the WhatsApp number that feeds this pipe\n"),
        "{out}"
    );
    assert!(
        out.contains("  status waiting paused  # waiting on the customer\n"),
        "{out}"
    );
    assert!(
        out.contains("  team frontline { ana@acme.com bruno@acme.com carla@acme.com }\n"),
        "{out}"
    );
    assert!(
        out.contains(concat!(
            "  route territory by contact.phone {\n",
            "    \"+5511\" \"+5512\" \"+5513\" -> frontline\n",
            "    \"+5571\" \"+5581\"         -> northeast\n",
            "    \"+351\"                  -> lisbon\n",
            "    else                    -> frontline\n",
            "  }\n",
        )),
        "{out}"
    );
    assert!(
        out.contains(
            "  view overdue \"Overdue\" {\n    where sla = breached\n    sort by due\n  }\n}\n"
        ),
        "{out}"
    );
}

#[test]
fn comments_in_every_position() {
    let out = check("rich", RICH);
    let expected_bits = [
        // header, then a blank line, then the template's own comment
        "# Header comment of the file.\n# Second header line.\n\n# A reusable support desk.\ntemplate desk(",
        // after a `{`
        "level) {  # params\n",
        // an empty body
        "template premium_desk(team_name) from desk(team_name: $team_name, first: 5m) {}\n",
        // comments inside a head move before it
        // A head longer than 100 characters gets one argument per line.
        "\n# the pipe's name is used in URLs\n# who answers\npipe support \"Customer Support\" from desk(\n  team_name: frontline,\n  agents: [ana@acme.com, bruno@acme.com],\n  greeting: \"Olá, \\\"cliente\\\"! # not a comment\",\n) {\n",
        "  # christmas\n  holidays \"2026-12-25\", \"2027-01-01\"\n\n  field priority",
        "  # money\n  field topic: choice(billing, delivery)\n",
        "  # lead\n  team frontline { ana@acme.com bruno@acme.com }\n  team empty_team {}\n",
        "  # only urgent ones\n  sla resolution 2h business warn 90m when priority = high and (topic in [billing, delivery] or not (city = \"São Paulo\"))\n",
        "  sla next_response 1h when vip = true and topic not in [delivery] and plan in [business, [or, when]]\n",
        "  field plan: choice(starter, business, enterprise, not, and)  # keywords are values in lists\n",
        "  route territory by contact.phone {  # by phone prefix\n    # São Paulo\n    \"+5511\" \"+5512\" -> frontline\n    [a, b] \"+351\"   -> lisbon  # two keys\n\n    $extra          -> frontline\n    else            -> frontline\n    # the end of the table\n  }\n",
        "  route empty by topic {}\n",
        "    set score = script { let m = #{ a: \"}\" }; // # hash in rhai\n      m.a.len() + 1 }\n",
        "    move closed  # done\n",
        "    notify manager \"tab\\there\"\n",
        "  on idle 7d {\n    # nothing yet\n  }\n",
        "  on message.received when script { card.priority == \"high\" } {}  # empty on purpose\n",
        "  view overdue \"Overdue\" {\n    # where first\n    where sla = breached and not status = closed\n    sort by due desc  # newest first\n  }\n  view all {}\n  # last words of the pipe\n}  # after the pipe\n\npipe tiny {}\n\n# end of file\n",
    ];
    for bit in expected_bits {
        assert!(out.contains(bit), "missing:\n{bit}\n--- in\n{out}");
    }
}

#[test]
fn programmers_operators_are_kept_as_written() {
    let out = check("operators", OPERATORS);
    assert!(
        out.contains(
            "on card.created when a = 1 && b = 2 || !c = 3 and !(d == 4) or e => 5 and !!f = 6 {\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("sla resolution 1h when (a = 1 || b = 2) && !within hours\n"),
        "{out}"
    );
}

#[test]
fn crlf_and_tabs_become_canonical() {
    let text = "pipe a {\r\n\tstatus new open initial\t# x \r\n\r\n\r\n\tstatus done\r\n}\r\n";
    let out = check("crlf", text);
    assert_eq!(
        out,
        "pipe a {\n  status new open initial  # x\n\n  status done\n}\n"
    );
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(check("empty", ""), "");
    assert_eq!(check("blank", "\n\n  \n"), "");
    assert_eq!(
        check("only comments", "  # one\n\n\n# two   \n"),
        "# one\n\n# two\n"
    );
}

#[test]
fn syntax_errors_are_returned_not_formatted() {
    let diags = format("pipe a {\n  field : text\n}\n")
        .expect_err("a file that does not parse is not formatted");
    assert!(!diags.is_empty());
    assert!(diags.iter().all(|d| d.code == "WF0001"), "{diags:?}");
    assert!(
        format("pipe a {\n  status new\n").is_err(),
        "an unclosed block is an error"
    );
}

#[test]
fn a_second_where_or_sort_is_refused_not_deleted() {
    // The tree keeps only the last clause of each kind; printing it would
    // delete the first one from the text.
    let text = "pipe a {\n  view v {\n    where a = 1\n    where b = 2\n    sort by x\n    sort by y desc\n  }\n}\n";
    let diags = format(text).expect_err("a view with two `where` lines is not formatted");
    assert_eq!(diags.len(), 2, "{diags:?}");
    assert_eq!(
        &text[diags[0].span.start as usize..diags[0].span.end as usize],
        "where b = 2"
    );
    assert_eq!(
        &text[diags[1].span.start as usize..diags[1].span.end as usize],
        "sort by y desc"
    );
    // One of each, in any order, is fine.
    let one = "pipe a {\n  view v { sort by x where a = 1 }\n}\n";
    assert_eq!(
        check("one of each", one),
        "pipe a {\n  view v {\n    where a = 1\n    sort by x\n  }\n}\n"
    );
}

#[test]
fn snapshots() {
    insta::glob!("fmt/*.flow", |path| {
        let input = std::fs::read_to_string(path).expect("snapshot input is readable");
        let out = check(&path.display().to_string(), &input);
        insta::assert_snapshot!(out);
    });
}

// ------------------------------------------------------------------ property

/// Where a comment may go in `text`: ends of lines that hold code and no
/// comment yet, outside strings and inline scripts; and starts of lines
/// outside strings and inline scripts (for a comment on its own line).
fn spots(text: &str) -> (Vec<usize>, Vec<usize>) {
    let prot = protected(text);
    let comment_ends: Vec<usize> = comment_ranges(text).into_iter().map(|(_, e)| e).collect();
    let inside = |q: usize| prot.iter().any(|&(s, e)| s < q && q < e);
    let mut ends = Vec::new();
    let mut starts = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        if !inside(line_start) {
            starts.push(line_start);
        }
        let content = line.trim_end_matches('\n');
        let end = line_start + content.len();
        if !content.trim().is_empty() && !inside(end) && !comment_ends.contains(&end) {
            ends.push(end);
        }
        line_start += line.len();
    }
    if !inside(text.len()) && text.ends_with('\n') {
        starts.push(text.len());
    }
    (ends, starts)
}

/// `text` with comments `# c<N>` (and blank lines) put at the picked spots.
fn with_comments(text: &str, picks: &[(prop::sample::Index, u8)]) -> (String, Vec<String>) {
    let (ends, starts) = spots(text);
    let mut inserts: Vec<(usize, usize, String)> = Vec::new();
    let mut used_ends = Vec::new();
    let mut names = Vec::new();
    for (n, (idx, kind)) in picks.iter().enumerate() {
        match kind % 3 {
            0 if !ends.is_empty() => {
                let q = ends[idx.index(ends.len())];
                if !used_ends.contains(&q) {
                    used_ends.push(q);
                    inserts.push((q, n, format!(" # c{n}")));
                    names.push(format!("# c{n}"));
                }
            }
            1 => {
                let s = starts[idx.index(starts.len())];
                inserts.push((s, n, format!("  # c{n}\n")));
                names.push(format!("# c{n}"));
            }
            _ => {
                let s = starts[idx.index(starts.len())];
                inserts.push((s, n, "\n".to_string()));
            }
        }
    }
    // From the end, so earlier offsets stay right; at one offset, in order.
    inserts.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let mut out = text.to_string();
    for (at, _, s) in inserts {
        out.insert_str(at, &s);
    }
    (out, names)
}

fn all_samples() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = SAMPLES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    v.extend(snapshot_inputs());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn comments_anywhere_are_kept(
        sample in any::<prop::sample::Index>(),
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        let samples = all_samples();
        let (name, text) = &samples[sample.index(samples.len())];
        let (mutated, names) = with_comments(text, &picks);
        let out = check(name, &mutated);
        let found = comments(&out);
        for n in names {
            prop_assert_eq!(found.iter().filter(|c| **c == n).count(), 1, "{} once in\n{}", n, out);
        }
    }
}

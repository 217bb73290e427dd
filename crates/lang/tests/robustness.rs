//! No input makes the checker or the formatter panic or hang: the example
//! files, mutated at random (tokens deleted, duplicated, swapped; random
//! bytes; truncation; deep nesting; huge inputs), always give diagnostics or
//! a workflow, and formatting never changes a file's meaning.
//! (`fuzz/` has a cargo-fuzz target for longer runs.)

use proptest::prelude::*;
use switchboard_lang::{check, fmt, parse, FileId, MemoryLoader, Sources};

const EXAMPLES: &[&str] = &[
    include_str!("../../../workflows/support.flow"),
    include_str!("../../../workflows/sales.flow"),
    include_str!("../../../workflows/hr.flow"),
    include_str!("../../../workflows/templates/helpdesk.flow"),
];

/// Everything a user could run on a text: check (with the helpdesk template
/// beside it, so `from` resolves), parse, and format with its guarantees.
fn exercise(text: &str) {
    let mut sources = Sources::new();
    sources.add("workflows/input.flow", text);
    sources.add("workflows/templates/helpdesk.flow", EXAMPLES[3]);
    let loader = MemoryLoader(
        [
            (
                "workflows/scripts/vip.rhai".to_string(),
                include_str!("../../../workflows/scripts/vip.rhai").to_string(),
            ),
            (
                "workflows/scripts/order_id.rhai".to_string(),
                include_str!("../../../workflows/scripts/order_id.rhai").to_string(),
            ),
        ]
        .into_iter()
        .collect(),
    );
    let checked = check(&mut sources, &loader);
    let rendered = switchboard_lang::diagnostic::render(&checked.diagnostics, &sources);
    // Every diagnostic renders with a position.
    assert_eq!(
        rendered.matches("error[").count() + rendered.matches("warning[").count(),
        checked.diagnostics.len()
    );
    let (tree, diags) = parse::parse(FileId(0), text);
    if let Ok(out) = fmt::format(text) {
        assert!(diags.is_empty());
        let (again, d2) = parse::parse(FileId(0), &out);
        assert!(d2.is_empty(), "formatted output does not parse:\n{out}");
        assert_eq!(again, tree, "formatting changed the meaning of:\n{text}");
    }
}

/// The text split into tokens that keep their spacing.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if c.is_whitespace() || "{}()[],\"".contains(c) {
            out.push(std::mem::take(&mut cur));
        }
    }
    out.push(cur);
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Insert(usize, String),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (
            any::<usize>(),
            prop_oneof![
                "\\PC{0,8}",
                prop::collection::vec(any::<u8>(), 0..8)
                    .prop_map(|b| String::from_utf8_lossy(&b).to_string()),
                Just("{".to_string()),
                Just("}".to_string()),
                Just("\"".to_string()),
                Just("$x".to_string()),
                Just("# c\n".to_string()),
                Just("when".to_string()),
                Just("->".to_string()),
                Just("script {".to_string()),
                Just("{{".to_string()),
            ]
        )
            .prop_map(|(at, s)| Mutation::Insert(at, s)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut toks = tokens(text);
    for m in mutations {
        let n = toks.len().max(1);
        match m {
            Mutation::Delete(i) if !toks.is_empty() => {
                toks.remove(i % n);
            }
            Mutation::Duplicate(i) if !toks.is_empty() => {
                let t = toks[i % n].clone();
                toks.insert(i % n, t);
            }
            Mutation::Swap(a, b) if !toks.is_empty() => toks.swap(a % n, b % n),
            Mutation::Insert(i, s) => toks.insert(i % (toks.len() + 1), s.clone()),
            Mutation::Truncate(i) => toks.truncate(i % (toks.len() + 1)),
            _ => {}
        }
    }
    toks.concat()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(which in 0..EXAMPLES.len(), mutations in prop::collection::vec(mutation(), 1..6)) {
        exercise(&apply(EXAMPLES[which], &mutations));
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        exercise(&text);
    }
}

#[test]
fn deep_nesting_is_refused_not_crashed() {
    let deep_parens = format!(
        "pipe p {{\n  status a open initial\n  on card.created when {}status = a{} {{ }}\n}}\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let deep_lists = format!(
        "pipe p {{\n  field f: choice({}a{})\n}}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let many_nots = format!(
        "pipe p {{\n  status a open initial\n  on card.created when {}status = a {{ }}\n}}\n",
        "not ".repeat(50_000)
    );
    let long_and = format!(
        "pipe p {{\n  status a open initial\n  on card.created when status = a{} {{ }}\n}}\n",
        " and status = a".repeat(50_000)
    );
    for text in [deep_parens, deep_lists, many_nots, long_and] {
        let mut sources = Sources::new();
        sources.add("deep.flow", text.clone());
        let checked = check(&mut sources, &MemoryLoader::default());
        assert!(
            checked
                .diagnostics
                .iter()
                .any(|d| d.message.contains("nested too deeply")),
            "{:?}",
            checked.diagnostics.first()
        );
        assert!(fmt::format(&text).is_err());
    }
}

#[test]
fn a_huge_file_is_checked() {
    let rule =
        "  on message.received when message.text ~ \"oi\" and status = a {\n    set n = 1\n  }\n";
    let text = format!(
        "pipe p {{\n  field n: number\n  status a open initial\n{}}}\n",
        rule.repeat(20_000)
    );
    let mut sources = Sources::new();
    sources.add("huge.flow", text);
    let checked = check(&mut sources, &MemoryLoader::default());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
    assert_eq!(checked.workflow.pipes[0].rules.len(), 20_000);
}

#[test]
fn binary_garbage_gives_a_syntax_error() {
    let text = String::from_utf8_lossy(&[0xff, 0x00, 0x13, 0x37, b'{', 0x80, b'}']).to_string();
    let mut sources = Sources::new();
    sources.add("garbage.flow", text);
    let checked = check(&mut sources, &MemoryLoader::default());
    assert!(checked.diagnostics.iter().any(|d| d.code == "WF0001"));
}

#[test]
fn nesting_just_under_the_limit_still_works() {
    let depth = switchboard_lang::parse::MAX_NESTING - 4;
    let text = format!(
        "pipe p {{\n  number \"+55 11 4000-1000\"\n  status a open initial\n  on card.created when {}status = a{} {{\n    note \"x\"\n  }}\n}}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let mut sources = Sources::new();
    sources.add("nested.flow", text.clone());
    let checked = check(&mut sources, &MemoryLoader::default());
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    assert!(fmt::format(&text).is_ok());
}

#[test]
fn every_test_file_that_parses_formats_without_changing_its_meaning() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut formatted = 0;
    for sub in ["errors", "fmt"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("test folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "flow") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            let (tree, diags) = parse::parse(FileId(0), &text);
            if !diags.is_empty() {
                assert!(
                    fmt::format(&text).is_err(),
                    "{}: formatted despite syntax errors",
                    path.display()
                );
                continue;
            }
            let out = fmt::format(&text).unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
            let (again, d2) = parse::parse(FileId(0), &out);
            assert!(
                d2.is_empty() && again == tree,
                "{}: meaning changed",
                path.display()
            );
            assert_eq!(
                fmt::format(&out).as_deref(),
                Ok(out.as_str()),
                "{}: not idempotent",
                path.display()
            );
            formatted += 1;
        }
    }
    assert!(formatted > 30, "only {formatted} test files formatted");
}

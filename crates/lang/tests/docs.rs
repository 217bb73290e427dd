//! Keeps the user documentation honest: every example in `docs/` is checked
//! by the real checker, and every diagnostic code has its page.
//!
//! Conventions for code blocks in the Markdown files:
//!
//! - `docs/errors/WFnnnn.md`: one page per code of `codes::ALL`, whose first
//!   line is `# WFnnnn: <the code's title in codes.rs>`. The first ```` ```flow ````
//!   block after the `## Wrong` heading must give at least one diagnostic with
//!   the page's code; the first ```` ```flow ```` block after `## Right` must give
//!   no error (warnings are allowed). Each is checked alone, as the file
//!   `docs/errors/WFnnnn.flow`. Every `error[WFnnnn]: message` or
//!   `warning[WFnnnn]: message` line shown in a ```` ```text ```` block of the page
//!   must be a diagnostic the Wrong block really gives (paths and line numbers
//!   are not compared, the words are).
//! - `docs/language.md`:
//!   - ```` ```flow ```` blocks are whole files: their first line that is not blank
//!     or a `#` comment starts with `pipe ` or `template `. Each must check with
//!     no error, together with the shared templates of `workflows/templates/`
//!     (as `switchboard check workflows/` would see it).
//!   - ```` ```flow-fragment ```` blocks are pieces of a pipe. Each is checked as
//!     the body of `pipe support "Customer Support" from support_base() { … }`,
//!     where `support_base` is `workflows/support.flow` turned into a
//!     template. By the language's own template rules, a line of the fragment
//!     replaces the line of the same name in support.flow (same field, status,
//!     team, route, view, named rule, `flow FROM`, plain `sla` of the same
//!     kind, `number`, `timezone`, `hours`, `holidays`) and the other lines are
//!     added. So a fragment may use every name support.flow defines. It must
//!     check with no error.
//!   - ```` ```flow-broken ```` blocks are deliberately wrong whole files: each must
//!     give at least one error.
//!   - Any other block (```` ```text ````, ```` ```sh ````) is not checked.
//!
//! All blocks are checked as if they were files in `workflows/`, so
//! `script("scripts/vip.rhai")` reads `workflows/scripts/vip.rhai`, exactly as
//! in the real examples.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use switchboard_lang::{check, codes, diagnostic, Checked, Diagnostic, Loader, Severity, Sources};

/// The workspace root (`crates/lang/../..`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reads the scripts the examples name, relative to the workspace root.
struct RootLoader;

impl Loader for RootLoader {
    fn load(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(root().join(path))
            .map_err(|_| "the file does not exist".to_string())
    }
}

/// One fenced block: its info string, its text, the last `##` heading
/// before it, and its line in the Markdown file.
#[derive(Debug)]
struct Block {
    info: String,
    text: String,
    heading: String,
    line: usize,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        match open.as_mut() {
            Some(block) => {
                if line.trim_start().starts_with("```") {
                    out.extend(open.take());
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```") {
                    open = Some(Block {
                        info: info.trim().to_string(),
                        text: String::new(),
                        heading: heading.clone(),
                        line: i + 1,
                    });
                } else if line.starts_with('#') && !line.starts_with("###") {
                    heading = line.trim_start_matches('#').trim().to_string();
                }
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed: {open:?}");
    out
}

fn check_files(files: &[(String, String)]) -> (Checked, Sources) {
    let mut sources = Sources::new();
    for (path, text) in files {
        sources.add(path.clone(), text.clone());
    }
    let checked = check(&mut sources, &RootLoader);
    (checked, sources)
}

fn errors(checked: &Checked) -> Vec<&Diagnostic> {
    checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

fn errors_dir() -> PathBuf {
    root().join("docs/errors")
}

// ---------------------------------------------------------------- docs/errors

#[test]
fn every_code_has_a_page_and_every_page_a_code() {
    let known: BTreeSet<&str> = codes::ALL.iter().map(|(c, _)| *c).collect();
    for (code, _) in codes::ALL {
        let page = errors_dir().join(format!("{code}.md"));
        assert!(page.is_file(), "no page {} for {code}", page.display());
    }
    let mut pages = 0;
    for entry in std::fs::read_dir(errors_dir()).expect("docs/errors exists") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .to_string();
        let code = name.strip_suffix(".md").unwrap_or_else(|| {
            panic!("docs/errors/{name}: only WFnnnn.md pages belong in docs/errors")
        });
        assert!(
            known.contains(code),
            "docs/errors/{name} names no code of codes::ALL"
        );
        pages += 1;
    }
    assert_eq!(pages, codes::ALL.len());
}

#[test]
fn every_page_has_the_title_of_its_code() {
    for (code, title) in codes::ALL {
        let text = page(code);
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("# {code}: {title}"),
            "docs/errors/{code}.md must start with its code and its title from codes.rs"
        );
    }
}

fn page(code: &str) -> String {
    std::fs::read_to_string(errors_dir().join(format!("{code}.md")))
        .unwrap_or_else(|e| panic!("docs/errors/{code}.md: {e}"))
}

/// The first ```flow block under a `## heading`.
fn first_flow_under<'a>(blocks: &'a [Block], heading: &str) -> Option<&'a Block> {
    blocks
        .iter()
        .find(|b| b.heading == heading && b.info == "flow")
}

fn check_page_block(code: &str, block: &Block) -> (Checked, Sources) {
    check_files(&[(format!("docs/errors/{code}.flow"), block.text.clone())])
}

#[test]
fn the_wrong_example_of_every_page_gives_its_code() {
    let mut failures = Vec::new();
    for (code, _) in codes::ALL {
        let text = page(code);
        let blocks = blocks(&text);
        let Some(wrong) = first_flow_under(&blocks, "Wrong") else {
            failures.push(format!("{code}: no ```flow block under `## Wrong`"));
            continue;
        };
        let (checked, sources) = check_page_block(code, wrong);
        if !checked.diagnostics.iter().any(|d| d.code == *code) {
            failures.push(format!(
                "{code}: the Wrong example (line {}) gives no {code}, but:\n{}",
                wrong.line,
                diagnostic::render(&checked.diagnostics, &sources)
            ));
        }
        // The messages the page shows are ones this example really gives.
        for shown in blocks.iter().filter(|b| b.info == "text") {
            for line in shown.text.lines() {
                let Some((severity, shown_code, message)) = shown_message(line) else {
                    continue;
                };
                let real = checked.diagnostics.iter().any(|d| {
                    d.code == shown_code
                        && d.message == message
                        && (d.severity == Severity::Error) == (severity == "error")
                });
                if !real {
                    failures.push(format!(
                        "{code}: the page shows `{line}`, which the Wrong example does not give; it gives:\n{}",
                        diagnostic::render(&checked.diagnostics, &sources)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `path:1:2: error[WF0002]: unknown status` → (`error`, `WF0002`, `unknown status`).
fn shown_message(line: &str) -> Option<(&str, &str, &str)> {
    for severity in ["error", "warning"] {
        let marker = format!("{severity}[");
        if let Some(i) = line.find(&marker) {
            let rest = &line[i + marker.len()..];
            let (code, message) = rest.split_once("]: ")?;
            if code.len() == 6 && code.starts_with("WF") {
                return Some((severity, code, message));
            }
        }
    }
    None
}

#[test]
fn the_right_example_of_every_page_checks_without_errors() {
    let mut failures = Vec::new();
    for (code, _) in codes::ALL {
        let text = page(code);
        let blocks = blocks(&text);
        let Some(right) = first_flow_under(&blocks, "Right") else {
            failures.push(format!("{code}: no ```flow block under `## Right`"));
            continue;
        };
        let (checked, sources) = check_page_block(code, right);
        if !errors(&checked).is_empty() {
            failures.push(format!(
                "{code}: the Right example (line {}) has errors:\n{}",
                right.line,
                diagnostic::render(&checked.diagnostics, &sources)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------- docs/language.md

fn language() -> String {
    std::fs::read_to_string(root().join("docs/language.md")).expect("docs/language.md exists")
}

/// The first line that is not blank or a comment.
fn first_code_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("")
}

/// The `.flow` files of `workflows/templates/`, as the CLI would read them.
fn shared_templates() -> Vec<(String, String)> {
    let dir = root().join("workflows/templates");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("workflows/templates exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "flow") {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("file name");
            out.push((
                format!("workflows/templates/{name}"),
                std::fs::read_to_string(&path).expect("readable"),
            ));
        }
    }
    out.sort();
    out
}

/// workflows/support.flow with its pipe turned into `template support_base()`.
fn support_base() -> String {
    let text = std::fs::read_to_string(root().join("workflows/support.flow"))
        .expect("workflows/support.flow exists");
    let head = text
        .lines()
        .find(|l| l.starts_with("pipe support "))
        .expect("workflows/support.flow declares `pipe support ... {` on one line");
    assert!(
        head.trim_end().ends_with('{'),
        "unexpected pipe line: {head}"
    );
    text.replacen(head, "template support_base() {", 1)
}

#[test]
fn language_guide_has_examples() {
    let text = language();
    let blocks = blocks(&text);
    let count = |info: &str| blocks.iter().filter(|b| b.info == info).count();
    assert!(
        count("flow") >= 5,
        "docs/language.md has few whole examples"
    );
    assert!(
        count("flow-fragment") >= 20,
        "docs/language.md has few pieces"
    );
}

#[test]
fn every_example_in_the_language_guide_checks() {
    let text = language();
    let base = support_base();
    let mut failures = Vec::new();
    for (n, block) in blocks(&text).iter().enumerate() {
        let path = format!("workflows/language-md-block-{n}.flow");
        match block.info.as_str() {
            "flow" => {
                let first = first_code_line(&block.text);
                if !(first.starts_with("pipe ") || first.starts_with("template ")) {
                    failures.push(format!(
                        "docs/language.md:{}: a ```flow block must be a whole file starting with `pipe` or `template`; mark pieces of a pipe ```flow-fragment",
                        block.line
                    ));
                    continue;
                }
                let mut files = shared_templates();
                files.push((path, block.text.clone()));
                let (checked, sources) = check_files(&files);
                if !errors(&checked).is_empty() {
                    failures.push(format!(
                        "docs/language.md:{}: the example has errors:\n{}",
                        block.line,
                        diagnostic::render(&checked.diagnostics, &sources)
                    ));
                }
            }
            "flow-fragment" => {
                let whole = format!(
                    "{base}\npipe support \"Customer Support\" from support_base() {{\n{}}}\n",
                    block.text
                );
                let (checked, sources) = check_files(&[(path, whole)]);
                if !errors(&checked).is_empty() {
                    failures.push(format!(
                        "docs/language.md:{}: the piece has errors inside the support pipe:\n{}",
                        block.line,
                        diagnostic::render(&checked.diagnostics, &sources)
                    ));
                }
            }
            "flow-broken" => {
                let (checked, sources) = check_files(&[(path, block.text.clone())]);
                if errors(&checked).is_empty() {
                    failures.push(format!(
                        "docs/language.md:{}: the broken example gives no error:\n{}",
                        block.line,
                        diagnostic::render(&checked.diagnostics, &sources)
                    ));
                }
            }
            info if info.starts_with("flow") => failures.push(format!(
                "docs/language.md:{}: unknown block kind ```{info}; use flow, flow-fragment or flow-broken",
                block.line
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------- the test's own helpers

#[test]
fn the_block_reader_finds_blocks_under_their_headings() {
    let md = "# T\n## Wrong\n```flow\npipe a {}\n```\n## Right\ntext\n```flow\npipe b {}\n```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].heading, "Wrong");
    assert_eq!(b[0].text, "pipe a {}\n");
    assert_eq!(b[1].heading, "Right");
    assert_eq!(
        shown_message("workflows/a.flow:1:2: error[WF0002]: unknown status `x`"),
        Some(("error", "WF0002", "unknown status `x`"))
    );
    assert_eq!(first_code_line("# c\n\n  pipe x {}"), "pipe x {}");
}

#[test]
fn a_wrong_example_is_caught() {
    // The checks above can fail: a pipe without statuses is an error.
    let (checked, _) = check_files(&[("docs/errors/X.flow".into(), "pipe a {}\n".into())]);
    assert!(!errors(&checked).is_empty());
}

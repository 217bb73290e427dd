//! Data-driven diagnostics tests: every `errors/*.flow` file is a workflow
//! with mistakes. Its first line says which codes it must produce
//! (`# expect: WF0002 WF0003`), and the exact rendered diagnostics are kept as
//! a reviewed snapshot in `snapshots/`. Adding a case is adding a file.

use std::path::Path;
use switchboard_lang::{check, diagnostic, Loader, Sources};

/// Reads scripts from the crate folder, as the CLI reads them from disk.
struct CrateLoader;

impl Loader for CrateLoader {
    fn load(&self, path: &str) -> Result<String, String> {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(full).map_err(|_| "the file does not exist".to_string())
    }
}

fn expected_codes(text: &str) -> Vec<String> {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect:"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

#[test]
fn every_broken_workflow_gives_its_diagnostics() {
    insta::glob!("errors/*.flow", |path| {
        let text = std::fs::read_to_string(path).expect("readable test file");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name");
        let mut sources = Sources::new();
        sources.add(format!("tests/errors/{name}"), text.clone());
        let checked = check(&mut sources, &CrateLoader);
        let expected = expected_codes(&text);
        assert!(
            !expected.is_empty(),
            "{name}: first line must be `# expect: WFnnnn ...`"
        );
        for code in &expected {
            assert!(
                checked.diagnostics.iter().any(|d| d.code == code),
                "{name}: expected a {code} diagnostic, got:\n{}",
                diagnostic::render(&checked.diagnostics, &sources)
            );
        }
        // Every diagnostic points at a real place in a real file.
        for d in &checked.diagnostics {
            assert!(
                sources.get(d.span.file).is_some(),
                "{name}: {d:?} points nowhere"
            );
        }
        insta::assert_snapshot!(diagnostic::render(&checked.diagnostics, &sources));
    });
}

#[test]
fn every_code_has_a_test_case() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/errors");
    let mut covered = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("errors folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "flow") {
            covered.extend(expected_codes(
                &std::fs::read_to_string(&path).expect("readable"),
            ));
        }
    }
    let missing: Vec<&str> = switchboard_lang::codes::ALL
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a case in tests/errors: {missing:?}"
    );
}

#[test]
fn the_examples_check_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let mut sources = Sources::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("workflows folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "flow") {
                let rel = path
                    .strip_prefix(root.parent().expect("parent"))
                    .expect("inside");
                sources.add(
                    rel.to_string_lossy().to_string(),
                    std::fs::read_to_string(&path).expect("readable"),
                );
            }
        }
    }
    struct RootLoader(std::path::PathBuf);
    impl Loader for RootLoader {
        fn load(&self, path: &str) -> Result<String, String> {
            std::fs::read_to_string(self.0.join(path)).map_err(|e| e.to_string())
        }
    }
    let checked = check(
        &mut sources,
        &RootLoader(root.parent().expect("parent").to_path_buf()),
    );
    assert!(
        checked.diagnostics.is_empty(),
        "{}",
        diagnostic::render(&checked.diagnostics, &sources)
    );
    let names: Vec<&str> = checked
        .workflow
        .pipes
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    for expected in ["support", "sales", "hr"] {
        assert!(
            names.contains(&expected),
            "pipe {expected} missing from {names:?}"
        );
    }
}

//! Tidy tests: the architecture's invariants (docs/architecture.md), checked
//! so that breaking one fails CI instead of slowly rotting the design.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Crates that do IO: network, disk, databases, async runtimes, clocks.
const IO_CRATES: &[&str] = &[
    "tokio",
    "async-std",
    "smol",
    "mio",
    "sqlx",
    "sqlx-core",
    "rusqlite",
    "libsqlite3-sys",
    "postgres",
    "tokio-postgres",
    "reqwest",
    "hyper",
    "axum",
    "tower",
    "ureq",
    "isahc",
    "curl",
    "notify",
    "walkdir",
];

/// The crates that must stay pure: no IO, no clock.
const PURE: &[&str] = &[
    "switchboard-lang",
    "switchboard-script",
    "switchboard-engine",
];

fn dependency_names(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(root())
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn pure_crates_depend_on_no_io_crate() {
    for package in PURE {
        let deps = dependency_names(package);
        assert!(
            deps.len() > 3,
            "{package}: cargo tree listed too little: {deps:?}"
        );
        let bad: Vec<&String> = deps
            .iter()
            .filter(|d| IO_CRATES.contains(&d.as_str()))
            .collect();
        assert!(
            bad.is_empty(),
            "{package} must do no IO, but depends on {bad:?}"
        );
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn pure_crates_read_no_file_socket_or_clock() {
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "SystemTime",
        "Instant::now",
        "Utc::now",
        "Local::now",
        "File::open",
        "read_to_string",
    ];
    for krate in ["crates/lang/src", "crates/script/src", "crates/engine/src"] {
        let mut files = Vec::new();
        rust_files(&root().join(krate), &mut files);
        assert!(!files.is_empty(), "{krate} has no sources?");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable source");
            for word in FORBIDDEN {
                assert!(
                    !text.contains(word),
                    "{} uses `{word}`: the pure crates take their inputs as values",
                    f.display()
                );
            }
        }
    }
}

#[test]
fn every_crate_says_what_it_is_for() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates folder")
        .map(|e| e.expect("entry").path())
        .collect();
    dirs.sort();
    let architecture =
        std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    for dir in dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let main = if dir.join("src/lib.rs").exists() {
            dir.join("src/lib.rs")
        } else {
            dir.join("src/main.rs")
        };
        let text = std::fs::read_to_string(&main).expect("crate root");
        assert!(
            text.starts_with("//!"),
            "{} must start with a `//!` line saying what the crate is for",
            main.display()
        );
        assert!(
            architecture.contains(&format!("crates/{name}")),
            "docs/architecture.md must describe crates/{name}"
        );
    }
}

#[test]
fn the_edges_know_nothing_of_the_language() {
    for edge in ["switchboard-store", "switchboard-whatsapp"] {
        let deps = dependency_names(edge);
        for core in [
            "switchboard-lang",
            "switchboard-engine",
            "switchboard-script",
        ] {
            assert!(
                !deps.iter().any(|d| d == core),
                "{edge} depends on {core}: only the server joins the edges to the engine"
            );
        }
    }
}

//! `switchboard serve` and `migrate` as an operator meets them: every
//! start-up mistake is one sentence (or the workflow's diagnostics) and
//! exit code 2, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("workflows")).expect("folder");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/support.flow"),
        dir.join("workflows/support.flow"),
    )
    .expect("copy");
    std::fs::create_dir_all(dir.join("workflows/scripts")).expect("folder");
    for script in ["vip.rhai", "order_id.rhai"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../workflows/scripts")
                .join(script),
            dir.join("workflows/scripts").join(script),
        )
        .expect("copy");
    }
    dir
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.args(args).current_dir(dir);
    for k in [
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
        "SWITCHBOARD_DATABASE_URL",
        "SWITCHBOARD_LISTEN",
    ] {
        c.env_remove(k);
    }
    c.env(
        "SWITCHBOARD_DATABASE_URL",
        format!("sqlite://{}", dir.join("t.db").display()),
    );
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn serving_without_the_app_secret_says_so_and_how_to_try_without_one() {
    let dir = folder("secret");
    let out = run(&dir, &["serve"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.starts_with("error: WHATSAPP_APP_SECRET is not set") && e.contains("serve --demo"),
        "{e}"
    );
    assert!(!e.contains("panicked"));
}

#[test]
fn a_workflow_with_errors_stops_the_start_with_its_diagnostics() {
    let dir = folder("flow");
    let path = dir.join("workflows/support.flow");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "status new",
        "status new\n  move nowhere_at_all",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let out = run(
        &dir,
        &["serve", "--demo"],
        &[("SWITCHBOARD_LISTEN", "127.0.0.1:0")],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("workflows/support.flow:") && e.contains("nowhere_at_all"),
        "{e}"
    );
}

#[test]
fn an_unreachable_database_is_one_sentence_without_its_password() {
    let dir = folder("db");
    let out = run(
        &dir,
        &["serve", "--demo"],
        &[
            (
                "SWITCHBOARD_DATABASE_URL",
                "postgres://app:hunter2@127.0.0.1:1/sb",
            ),
            ("SWITCHBOARD_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("error: cannot open the database postgres://app:***@127.0.0.1:1/sb"),
        "{e}"
    );
    assert!(!e.contains("hunter2"));
}

#[test]
fn a_bad_setting_in_switchboard_toml_names_the_key() {
    let dir = folder("toml");
    std::fs::write(
        dir.join("switchboard.toml"),
        "SWITCHBOARD_LISTEN = \"somewhere\"\n",
    )
    .unwrap();
    let out = run(&dir, &["serve", "--demo"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("SWITCHBOARD_LISTEN should be an address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migrate_creates_the_sqlite_database_and_says_it_is_up_to_date() {
    let dir = folder("migrate");
    let out = run(&dir, &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is up to date"));
    assert!(dir.join("t.db").exists());
    assert!(
        dir.join("t-inbox.db").exists(),
        "the webhook bodies' file beside it"
    );
    // Twice is fine.
    assert_eq!(run(&dir, &["migrate"], &[]).status.code(), Some(0));
}

#[test]
fn users_and_tokens_are_created_from_the_command_line() {
    let dir = folder("users");
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.args([
        "user",
        "add",
        "ana@acme.com",
        "--name",
        "Ana",
        "--role",
        "agent",
        "--password-stdin",
    ])
    .current_dir(&dir)
    .env(
        "SWITCHBOARD_DATABASE_URL",
        format!("sqlite://{}", dir.join("t.db").display()),
    )
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("user ana@acme.com (Ana) is agent"));

    let made_up = run(
        &dir,
        &[
            "user",
            "add",
            "bruno@acme.com",
            "--name",
            "Bruno",
            "--role",
            "manager",
        ],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&made_up.stdout).contains("password: "),
        "a password is made up and shown once"
    );

    let token = run(
        &dir,
        &["token", "create", "--user", "ana@acme.com", "--name", "ci"],
        &[],
    );
    assert_eq!(token.status.code(), Some(0), "{}", stderr(&token));
    let stdout = String::from_utf8_lossy(&token.stdout);
    let last = stdout.split_whitespace().last().unwrap();
    assert!(last.starts_with("sbt_") && last.len() == 68, "{stdout}");

    let bad_role = run(
        &dir,
        &["user", "add", "c@acme.com", "--name", "C", "--role", "boss"],
        &[],
    );
    assert_eq!(bad_role.status.code(), Some(2));
    assert!(stderr(&bad_role).contains("`boss` is not a role; the roles are admin, manager, agent"));
    let nobody = run(
        &dir,
        &[
            "token",
            "create",
            "--user",
            "nobody@acme.com",
            "--name",
            "x",
        ],
        &[],
    );
    assert!(
        stderr(&nobody).contains("there is no user `nobody@acme.com`"),
        "{}",
        stderr(&nobody)
    );
}

//! The `switchboard` binary as a user runs it: exit codes, file:line:col,
//! suggestions, JSON output, and mistakes made in copies of the examples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn switchboard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// A fresh copy of `workflows/` in a folder of its own.
fn copy_of_examples(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&root().join("workflows"), &dir.join("workflows"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

#[test]
fn the_examples_check_and_say_what_they_do() {
    let out = switchboard(&root(), &["check", "workflows"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pipe support \"Customer Support\""),
        "{stdout}"
    );
    assert!(stdout.contains("pipe hr \"People & HR\""), "{stdout}");
    assert!(stdout.contains("0 errors"), "{stdout}");
}

#[test]
fn the_examples_are_formatted() {
    let out = switchboard(&root(), &["fmt", "--check", "workflows"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// One mistake per kind, each made in a fresh copy of an example.
#[test]
fn every_kind_of_mistake_in_an_example_names_its_place() {
    // (file, text to find, replacement, expected code). The error must be on
    // the changed line, except for the few listed in `elsewhere`.
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "support.flow",
            "    move in_progress\n",
            "    move in_progres\n",
            "WF0002",
        ),
        (
            "support.flow",
            "set topic = billing",
            "set topik = billing",
            "WF0003",
        ),
        (
            "support.flow",
            "assign by_topic least_busy",
            "assign by_topik least_busy",
            "WF0004",
        ),
        (
            "support.flow",
            "sla next_response 1h",
            "sla next_reponse 1h",
            "WF0005",
        ),
        ("hr.flow", "from helpdesk(", "from helpdsk(", "WF0006"),
        (
            "hr.flow",
            "first_response: 1h,",
            "first_respons: 1h,",
            "WF0007",
        ),
        (
            "support.flow",
            "field city: text",
            "field amount: text",
            "WF0008",
        ),
        (
            "support.flow",
            "set topic = billing",
            "set topic = refunds",
            "WF0009",
        ),
        (
            "support.flow",
            "when amount > 5000",
            "when amount > lots",
            "WF0010",
        ),
        (
            "support.flow",
            "sla first_response 15m",
            "sla first_response 15x",
            "WF0011",
        ),
        (
            "support.flow",
            "Sat 09:00-13:00",
            "Sat 09:00-31:00",
            "WF0012",
        ),
        ("support.flow", "\"2027-02-16\"", "\"2027-02-30\"", "WF0013"),
        (
            "support.flow",
            "America/Sao_Paulo",
            "America/Sao_Paolo",
            "WF0014",
        ),
        (
            "support.flow",
            "every \"0 8 * * Mon-Fri\"",
            "every \"0 8 * * Mun-Fri\"",
            "WF0015",
        ),
        (
            "support.flow",
            "~ \"refund|reembolso|estorno\"",
            "~ \"refund|(reembolso\"",
            "WF0016",
        ),
        ("support.flow", "\"+5571\"", "\"5571\"", "WF0017"),
        (
            "support.flow",
            "status new open initial",
            "status new open",
            "WF0018",
        ),
        (
            "support.flow",
            "status in_progress active",
            "status in_progress active initial",
            "WF0019",
        ),
        (
            "support.flow",
            "flow resolved -> closed | in_progress",
            "flow closed -> in_progress",
            "WF0020",
        ),
        (
            "support.flow",
            "flow waiting -> in_progress | resolved",
            "flow waiting -> resolved",
            "WF0022",
        ),
        (
            "support.flow",
            "    else                    -> frontline\n",
            "",
            "WF0023",
        ),
        (
            "support.flow",
            "sla resolution 2h business when priority = high",
            "sla resolution 2h business",
            "WF0024",
        ),
        (
            "support.flow",
            "reply \"Olá {{ contact.name }}! Recebemos",
            "reply \"Olá {{ contact.name }! Recebemos",
            "WF0027",
        ),
        (
            "support.flow",
            "script(\"scripts/vip.rhai\")",
            "script(\"scripts/vipp.rhai\")",
            "WF0028",
        ),
        ("support.flow", "on idle 7d", "on idel 7d", "WF0029"),
        (
            "support.flow",
            "status waiting paused",
            "status waiting pausd",
            "WF0030",
        ),
        ("support.flow", "bruno@acme.com", "bruno.acme.com", "WF0031"),
        (
            "support.flow",
            "message.text ~ \"refund",
            "message.txt ~ \"refund",
            "WF0032",
        ),
        (
            "support.flow",
            "amount > 5000 and",
            "amount > 5000 &&",
            "WF0033",
        ),
        (
            "support.flow",
            "webhook \"https://erp",
            "webhook \"erp",
            "WF0035",
        ),
        (
            "support.flow",
            "\"+55 11 4000-1000\"",
            "\"+55 11 4000-2000\"",
            "WF0037",
        ),
        (
            "support.flow",
            "when priority = high {",
            "when priority > high {",
            "WF0038",
        ),
        (
            "support.flow",
            "  status waiting",
            "  stauts waiting",
            "WF0001",
        ),
    ];
    // Mistakes whose error is reported where the mistake shows, not where it was made.
    let elsewhere: &[(&str, &str)] = &[
        // A pipe without an initial status is reported at the pipe's name.
        ("WF0018", "pipe support"),
        // A flow that no longer allows a move is reported at the rule's `move`.
        ("WF0022", "rule customer_back"),
        // A route without `else` is reported at the route.
        ("WF0023", "route territory"),
    ];
    for (i, (file, find, replace, code)) in cases.iter().enumerate() {
        let dir = copy_of_examples(&format!("mistake{i}"));
        let path = dir.join("workflows").join(file);
        let original = std::fs::read_to_string(&path).expect("example");
        let at = original
            .find(find)
            .unwrap_or_else(|| panic!("case {i}: `{find}` not in {file}"));
        let changed = original.replacen(find, replace, 1);
        std::fs::write(&path, &changed).expect("write copy");
        let out = switchboard(&dir, &["check", "workflows"]);
        let all = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "case {i} ({code}) should fail:\n{all}"
        );
        // The mistake is on the line where the text was changed.
        let anchor = elsewhere
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, a)| changed.find(a).expect("anchor"));
        let first_line = changed[..anchor.unwrap_or(at)].matches('\n').count() + 1;
        let lines: Vec<usize> = (first_line.saturating_sub(1)..=first_line + 2).collect();
        let found = all.lines().any(|l| {
            l.starts_with(&format!("workflows/{file}:"))
                && l.contains(&format!("error[{code}]"))
                && lines
                    .iter()
                    .any(|n| l.starts_with(&format!("workflows/{file}:{n}:")))
        });
        assert!(
            found,
            "case {i}: expected `workflows/{file}:{first_line}:COL: error[{code}]` in:\n{all}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_misspelt_status_gets_its_suggestion() {
    let dir = copy_of_examples("suggest");
    let path = dir.join("workflows/support.flow");
    let text_before = std::fs::read_to_string(&path).expect("example");
    std::fs::write(
        &path,
        text_before.replacen("    move in_progress\n", "    move in_progres\n", 1),
    )
    .expect("write");
    let out = switchboard(&dir, &["check", "workflows"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error[WF0002]: unknown status `in_progres`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("^^^^^^^^^^ did you mean `in_progress`?"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_output_has_one_object_per_diagnostic() {
    let dir = copy_of_examples("json");
    let path = dir.join("workflows/support.flow");
    let before = std::fs::read_to_string(&path).expect("example");
    let broken = before
        .replacen("set topic = billing", "set topik = billing", 1)
        .replacen("15m business", "15x business", 1);
    std::fs::write(&path, broken).expect("write");
    let out = switchboard(&dir, &["check", "--format", "json", "workflows"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(objects.len(), 2, "{stdout}");
    assert_eq!(objects[0]["code"], "WF0011");
    assert_eq!(objects[1]["code"], "WF0003");
    for o in &objects {
        assert_eq!(o["file"], "workflows/support.flow");
        assert!(o["line"].as_u64().is_some_and(|l| l > 0));
        assert!(o["column"].as_u64().is_some_and(|c| c > 0));
        assert_eq!(o["severity"], "error");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_path_is_one_sentence_and_exit_2() {
    let out = switchboard(&root(), &["check", "no/such/folder"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "error: no/such/folder does not exist");
}

#[test]
fn fmt_check_reports_unformatted_files_and_fmt_fixes_them() {
    let dir = copy_of_examples("fmt");
    let path = dir.join("workflows/support.flow");
    let before = std::fs::read_to_string(&path).expect("example");
    std::fs::write(
        &path,
        before.replace(
            "  status new open initial",
            "status    new   open initial   ",
        ),
    )
    .expect("write");
    let out = switchboard(&dir, &["fmt", "--check", "workflows"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("workflows/support.flow is not formatted")
    );
    let out = switchboard(&dir, &["fmt", "workflows"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&path).expect("formatted"), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fmt_refuses_a_file_that_does_not_parse_and_leaves_it_alone() {
    let dir = copy_of_examples("fmtbad");
    let path = dir.join("workflows/support.flow");
    let before = std::fs::read_to_string(&path).expect("example");
    let broken = before.replacen("    move in_progress\n", "    move\n", 1);
    std::fs::write(&path, &broken).expect("write");
    let out = switchboard(&dir, &["fmt", "workflows"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("workflows/support.flow:"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&path).expect("unchanged"), broken);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_file_is_checked_with_the_templates_beside_it() {
    let out = switchboard(&root(), &["check", "workflows/hr.flow"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("pipe hr \"People & HR\""));
}

#[test]
fn a_template_travels_from_one_team_to_another() {
    let from = copy_of_examples("export");
    let shared = from.join("helpdesk-shared.flow");
    let out = switchboard(
        &from,
        &[
            "template",
            "export",
            "helpdesk",
            "--out",
            "helpdesk-shared.flow",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let exported = std::fs::read_to_string(&shared).expect("exported file");
    assert!(exported.contains("template helpdesk("), "{exported}");

    // Another team without the template imports it, then builds a pipe from it.
    let to = std::env::temp_dir().join(format!("switchboard-cli-{}-import", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(to.join("workflows")).expect("folder");
    let out = switchboard(&to, &["template", "import", shared.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(to.join("workflows/templates/helpdesk.flow").exists());
    std::fs::write(
        to.join("workflows/it.flow"),
        "pipe it \"IT\" from helpdesk(number: \"+55 11 4000-5000\", agents: [ti@acme.com]) {\n}\n",
    )
    .expect("write pipe");
    let out = switchboard(&to, &["check", "workflows"]);
    assert!(out.status.success(), "{}", text(&out));

    // Importing the same template again is refused and changes nothing.
    let out = switchboard(&to, &["template", "import", shared.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("template `helpdesk` already exists"),
        "{}",
        text(&out)
    );

    let out = switchboard(&from, &["template", "export", "helpdsk"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("did you mean `helpdesk`?"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&from);
    let _ = std::fs::remove_dir_all(&to);
}

/// A scratch folder of its own for a test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchboard-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

#[test]
fn the_refund_conversation_simulates_with_its_assignment_and_reply() {
    let out = switchboard(
        &root(),
        &[
            "simulate",
            "workflows/support.flow",
            "--events",
            "workflows/conversations/support-refund.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "09:00  Maria Souza (5511987650001) → +55 11 4000-1000: \"Oi, quero um reembolso",
        "card #1 opened in support as new",
        "assigned to ana@acme.com (team frontline) by rule greet (workflows/support.flow:",
        "reply → 5511987650001: \"Olá Maria Souza!",
        "topic set to \"billing\" (was \"other\") by rule refund",
        "waits in team billing's queue",
        "assigned to davi@acme.com (team billing)",
        "moved new → waiting by davi@acme.com",
        "moved waiting → in_progress by rule customer_back",
        "refused: move to closed — the flow does not allow",
        "not fired: rule customer_back (workflows/support.flow:",
        "is now read",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    assert!(
        stdout.contains(
            "#1 support #1 — Maria Souza (5511987650001): resolved, assigned to davi@acme.com"
        ),
        "the summary tells how each card ends:\n{stdout}"
    );
}

#[test]
fn the_sales_lead_simulates_with_its_timers() {
    let out = switchboard(
        &root(),
        &[
            "simulate",
            "workflows/sales.flow",
            "--events",
            "workflows/conversations/sales-lead.jsonl",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "assigned to rafael@acme.com (team sp_capital) by rule new_lead",
        "reply → 5511912340002: \"Olá João Pereira!",
        "timer: SLA first_response warns on card #1",
        "product set to \"enterprise\" (was none) by rule enterprise",
        "moved lead → qualified by rule qualify",
        "deal_value set to 128160",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
}

#[test]
fn simulate_json_is_the_cards_and_the_log() {
    let out = switchboard(
        &root(),
        &[
            "simulate",
            "workflows/support.flow",
            "--events",
            "workflows/conversations/support-refund.jsonl",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    let card = &v["cards"][0];
    assert_eq!(card["pipe"], "support");
    assert_eq!(card["number"], 1);
    assert_eq!(card["status"], "resolved");
    assert_eq!(card["assignee"], "davi@acme.com");
    assert_eq!(card["fields"]["topic"], "billing");
    assert_eq!(card["last_responder"], "team");
    assert_eq!(card["contact"]["name"], "Maria Souza");
    assert!(card["history"].as_array().is_some_and(|h| !h.is_empty()));
    let log = v["log"].as_array().expect("a log");
    assert!(
        log.iter().all(|e| e["at"].is_string()),
        "every log entry has its time"
    );
    assert!(log
        .iter()
        .any(|e| e["rule"] == "greet" && e["fired"] == true));
    assert!(log
        .iter()
        .any(|e| e["rule"] == "customer_back" && e["fired"] == false && e["reason"].is_string()));
    assert!(log
        .iter()
        .any(|e| e["effect"] == "assigned" && e["agent"] == "davi@acme.com" && e["card"] == 1));
    assert!(log
        .iter()
        .any(|e| e["delivery"] == "read" && e["line"].is_number()));
}

#[test]
fn a_broken_events_file_names_every_bad_line_and_exits_1() {
    let dir = scratch("bad-events");
    let events = dir.join("bad.jsonl");
    std::fs::write(
        &events,
        r#"{"at":"2026-11-23T09:00:00-03:00","message":{"from":"5511987650001","to":"+55 11 4000-1000","text":"Oi"}}
{"at":"2026-11-23T09:01:00-03:00","replay":{"card":1,"agent":"ana@acme.com","text":"Olá"}}
{"at":"2026-11-23T09:02:00-03:00","reply":{"agent":"ana@acme.com","text":"Olá"}}
{"at":"2026-11-23 09:03","until":true}
{"at":"2026-11-23T09:01:00-03:00","until":true}
{"at":"2026-11-23T09:05:00-03:00","move":{"card":1,"agent":"ana@acme.com","status":"waiting"}
"#,
    )
    .expect("write events");
    let path = events.to_str().expect("path");
    let out = switchboard(
        &root(),
        &["simulate", "workflows/support.flow", "--events", path],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    for (line, says) in [
        (2, "unknown kind of event `replay`"),
        (3, "`reply` needs `card`"),
        (4, "`at` \"2026-11-23 09:03\" is not an RFC 3339 time"),
        (5, "`at` 09:01 is before the previous line's 09:02"),
        (6, "invalid JSON"),
    ] {
        let expected = format!("{path}:{line}: error: {says}");
        assert!(all.contains(&expected), "missing {expected:?} in\n{all}");
    }
    assert!(all.contains("did you mean `reply`?"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_card_that_does_not_exist_yet_is_an_error_with_its_line() {
    let dir = scratch("no-card");
    let events = dir.join("early.jsonl");
    std::fs::write(
        &events,
        r#"{"at":"2026-11-23T09:00:00-03:00","reply":{"card":1,"agent":"ana@acme.com","text":"Olá"}}
"#,
    )
    .expect("write events");
    let path = events.to_str().expect("path");
    let out = switchboard(
        &root(),
        &["simulate", "workflows/support.flow", "--events", path],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "{path}:1: error: `reply` names card #1, which does not exist yet"
        )),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_events_file_is_one_sentence_and_exit_2() {
    let out = switchboard(
        &root(),
        &[
            "simulate",
            "workflows/support.flow",
            "--events",
            "workflows/conversations/nope.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: the events file workflows/conversations/nope.jsonl does not exist"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_workflow_with_errors_is_not_simulated() {
    let dir = copy_of_examples("simulate-broken");
    let flow = dir.join("workflows/support.flow");
    let text_before = std::fs::read_to_string(&flow).expect("read");
    std::fs::write(
        &flow,
        text_before.replace("    move in_progress\n", "    move in_progres\n"),
    )
    .expect("write");
    let out = switchboard(
        &dir,
        &[
            "simulate",
            "workflows/support.flow",
            "--events",
            "workflows/conversations/support-refund.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("error[WF0002]"), "{}", text(&out));
    assert!(
        text(&out).contains("fix it before simulating"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_workflow_tests_of_the_examples_pass() {
    let out = switchboard(&root(), &["test", "workflows"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok      workflows/tests/portugal-summer-time.test.jsonl"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.ends_with(" passed, 0 failed")),
        "{stdout}"
    );
}

#[test]
fn a_workflow_test_that_is_not_met_names_its_line_and_fails() {
    let dir = copy_of_examples("wftest");
    let path = dir.join("workflows/tests/hr-sensitive.test.jsonl");
    let before = std::fs::read_to_string(&path).expect("test file");
    std::fs::write(
        &path,
        before.replace(
            "\"assignee\":\"juliana@acme.com\"",
            "\"assignee\":\"rh@acme.com\"",
        ),
    )
    .expect("write");
    std::fs::write(
        dir.join("workflows/tests/broken.test.jsonl"),
        "{\"at\":\"soon\",\"expect\":{\"card\":1,\"status\":\"new\"}}\n",
    )
    .expect("write");
    let out = switchboard(&dir, &["test", "workflows"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("workflows/tests/hr-sensitive.test.jsonl:3: card #1: assignee `rh@acme.com` expected, found `juliana@acme.com`"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("workflows/tests/broken.test.jsonl:1: `at` \"soon\" is not an RFC 3339 time"),
        "{stdout}"
    );
    assert!(stdout.contains("4 passed, 2 failed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

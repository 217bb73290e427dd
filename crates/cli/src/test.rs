//! `switchboard test`: workflow tests kept next to the workflows. A test is
//! a scripted conversation (`*.test.jsonl`, the format of `simulate`) with
//! `expect` lines saying what must be true of a card at that time, so a
//! department head can prove a change before saving it.

use crate::simulate::Simulation;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchboard_engine::{conversation, Engine};
use switchboard_lang::diagnostic;
use switchboard_server::files;

/// Runs every test file under the paths against the workflows under them.
pub fn run(paths: &[PathBuf]) -> Result<ExitCode, String> {
    let defaults = [PathBuf::from("workflows")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
    let list = files::flow_files(paths, true)?;
    let mut sources = files::load(&list)?;
    let checked = switchboard_lang::check(&mut sources, &files::DiskLoader);
    if checked.has_errors() {
        eprint!("{}", diagnostic::render(&checked.diagnostics, &sources));
        eprintln!("error: the workflows have errors; fix them before testing (switchboard check)");
        return Ok(ExitCode::from(1));
    }
    let mut tests = Vec::new();
    for p in paths {
        collect(p, &mut tests).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    }
    tests.sort();
    if tests.is_empty() {
        return Err("no workflow tests found: they are files ending in .test.jsonl".to_string());
    }
    let engine = Engine::new(checked.workflow);
    let (mut passed, mut failed) = (0, 0);
    for test in &tests {
        let name = files::display(test);
        let text = std::fs::read_to_string(test).map_err(|e| format!("cannot read {name}: {e}"))?;
        let problems = run_one(&engine, &text);
        let expectations = conversation::parse(&text)
            .map(|lines| lines.iter().filter(|l| l.kind() == "expect").count())
            .unwrap_or(0);
        if problems.is_empty() {
            passed += 1;
            let plural = if expectations == 1 { "" } else { "s" };
            println!("ok      {name} ({expectations} expectation{plural})");
        } else {
            failed += 1;
            println!("FAILED  {name}");
            for (line, message) in problems {
                println!("  {name}:{line}: {message}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The problems of one test: lines that cannot be read, lines that cannot
/// be played, and expectations not met.
fn run_one(engine: &Engine, text: &str) -> Vec<(usize, String)> {
    let script = match conversation::parse(text) {
        Ok(s) => s,
        Err(errors) => return errors.into_iter().map(|e| (e.line, e.message)).collect(),
    };
    if !script.iter().any(|l| l.kind() == "expect") {
        return vec![(
            1,
            "this test expects nothing: add `expect` lines".to_string(),
        )];
    }
    let mut sim = Simulation::new(engine);
    for line in &script {
        if let Err(e) = sim.play(line) {
            return vec![e];
        }
    }
    std::mem::take(&mut sim.failures)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        if path.to_string_lossy().ends_with(".test.jsonl") {
            out.push(path.to_path_buf());
        }
        return Ok(());
    }
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect(&entry?.path(), out)?;
        }
    }
    Ok(())
}

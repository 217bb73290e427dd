//! `switchboard check`: every diagnostic of every file, then what each pipe does.

use std::path::PathBuf;
use std::process::ExitCode;
use switchboard_lang::{diagnostic, model::Pipe, Severity};
use switchboard_server::files;

pub fn run(paths: &[PathBuf], json: bool, quiet: bool) -> Result<ExitCode, String> {
    let list = files::flow_files(paths, true)?;
    if list.is_empty() {
        return Err("no .flow files found".to_string());
    }
    let mut sources = files::load(&list)?;
    let checked = switchboard_lang::check(&mut sources, &files::DiskLoader);
    let errors = checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = checked.diagnostics.len() - errors;
    if json {
        for d in &checked.diagnostics {
            println!("{}", diagnostic::to_json(d, &sources));
        }
    } else {
        print!("{}", diagnostic::render(&checked.diagnostics, &sources));
        if !quiet && errors == 0 {
            for pipe in &checked.workflow.pipes {
                print!("{}", summary(pipe));
            }
        }
        println!(
            "checked {} file{}: {} error{}, {} warning{}",
            list.len(),
            plural(list.len()),
            errors,
            plural(errors),
            warnings,
            plural(warnings)
        );
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What a pipe does, in a few lines a department head can read.
fn summary(p: &Pipe) -> String {
    let numbers: Vec<&str> = p.numbers.iter().map(|n| n.display.as_str()).collect();
    let statuses: Vec<String> = p
        .statuses
        .iter()
        .map(|s| {
            if s.initial {
                format!("{} (start)", s.name)
            } else {
                s.name.clone()
            }
        })
        .collect();
    let teams: Vec<String> = p
        .teams
        .iter()
        .map(|t| format!("{} ({})", t.name, t.members.len()))
        .collect();
    let slas: Vec<String> = p
        .slas
        .iter()
        .map(|s| {
            format!(
                "{} {}{}{}",
                s.kind.name(),
                switchboard_lang::values::format_duration(s.window_secs),
                if s.business { " business" } else { "" },
                if s.when.is_some() {
                    " (some cards)"
                } else {
                    ""
                }
            )
        })
        .collect();
    let mut out = format!("pipe {} \"{}\" ({})\n", p.name, p.title, p.origin);
    out.push_str(&format!(
        "  numbers:   {}\n",
        if numbers.is_empty() {
            "none".into()
        } else {
            numbers.join(", ")
        }
    ));
    out.push_str(&format!("  statuses:  {}\n", statuses.join(" → ")));
    out.push_str(&format!(
        "  fields:    {}\n",
        p.fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&format!("  teams:     {}\n", teams.join(", ")));
    if !slas.is_empty() {
        out.push_str(&format!("  sla:       {}\n", slas.join(", ")));
    }
    out.push_str(&format!(
        "  rules:     {} rules, {} routes, {} schedules, {} views\n\n",
        p.rules.len(),
        p.routes.len(),
        p.schedules.len(),
        p.views.len()
    ));
    out
}

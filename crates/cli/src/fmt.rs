//! `switchboard fmt`: rewrite files in the canonical layout.

use std::path::PathBuf;
use std::process::ExitCode;
use switchboard_server::files;

pub fn run(paths: &[PathBuf], check_only: bool) -> Result<ExitCode, String> {
    let list = files::flow_files(paths, false)?;
    let mut changed = 0;
    let mut broken = 0;
    for path in &list {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        match switchboard_lang::fmt::format(&text) {
            Ok(formatted) if formatted == text => {}
            Ok(formatted) => {
                changed += 1;
                if check_only {
                    println!("{} is not formatted", files::display(path));
                } else {
                    std::fs::write(path, formatted)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    println!("formatted {}", files::display(path));
                }
            }
            Err(diags) => {
                broken += 1;
                let mut sources = switchboard_lang::Sources::new();
                let id = sources.add(files::display(path), text);
                let diags: Vec<_> = diags
                    .into_iter()
                    .map(|mut d| {
                        d.span.file = id;
                        d
                    })
                    .collect();
                eprint!("{}", switchboard_lang::diagnostic::render(&diags, &sources));
            }
        }
    }
    if broken > 0 {
        eprintln!("{broken} file(s) could not be formatted because they do not parse; fix them first (switchboard check)");
        return Ok(ExitCode::from(1));
    }
    if check_only && changed > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

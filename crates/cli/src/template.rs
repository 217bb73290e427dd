//! `switchboard template export|import`: teams trading whole workflows.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use switchboard_lang::{diagnostic, share};
use switchboard_server::files;

/// Prints (or writes) one self-contained file with the template and the
/// templates it is built from.
pub fn export(name: &str, out: Option<&Path>, paths: &[PathBuf]) -> Result<ExitCode, String> {
    let list = files::flow_files(paths, true)?;
    let sources = files::load(&list)?;
    let text = share::export_template(&sources, name)?;
    match out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote template `{name}` to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds a shared template file to the workflows, refusing clashes and
/// anything that would make the workflows fail to check.
pub fn import(file: &Path, workflows: &Path) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let names = share::templates_in(&text)
        .map_err(|why| format!("{} cannot be imported: {why}", file.display()))?;
    if !workflows.is_dir() {
        return Err(format!(
            "{} is not a folder of workflows",
            workflows.display()
        ));
    }
    // Names already taken by the workflows' own templates.
    let existing = files::flow_files(&[workflows.to_path_buf()], false)?;
    for path in &existing {
        let other = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if let Ok(theirs) = share::templates_in(&other) {
            if let Some(clash) = names.iter().find(|n| theirs.contains(n)) {
                return Err(format!(
                    "template `{clash}` already exists in {}; rename one of them first",
                    files::display(path)
                ));
            }
        }
    }
    let dir = workflows.join("templates");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let target = dir.join(format!(
        "{}.flow",
        names.last().map(String::as_str).unwrap_or("shared")
    ));
    if target.exists() {
        return Err(format!(
            "{} already exists; remove it or rename the template first",
            files::display(&target)
        ));
    }
    std::fs::write(&target, &text)
        .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    // Nothing imported may break what already works.
    let list = files::flow_files(&[workflows.to_path_buf()], false)?;
    let mut sources = files::load(&list)?;
    let checked = switchboard_lang::check(&mut sources, &files::DiskLoader);
    if checked.has_errors() {
        let _ = std::fs::remove_file(&target);
        eprint!("{}", diagnostic::render(&checked.diagnostics, &sources));
        eprintln!(
            "error: importing {} would break the workflows, so it was not imported",
            file.display()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "imported template{} {} into {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        files::display(&target)
    );
    Ok(ExitCode::SUCCESS)
}

//! Finding and reading workflow files on disk.

use std::path::{Path, PathBuf};
use switchboard_lang::{Loader, Sources};

/// The `.flow` files under the given paths (default `workflows/`), sorted.
/// With `with_templates`, also those of a `templates/` folder beside each.
pub fn flow_files(paths: &[PathBuf], with_templates: bool) -> Result<Vec<PathBuf>, String> {
    let defaults = [PathBuf::from("workflows")];
    let paths = if paths.is_empty() {
        &defaults[..]
    } else {
        paths
    };
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| format!("cannot read folder {}: {e}", p.display()))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{} does not exist", p.display()));
        }
    }
    // A file checked on its own still needs the templates it is built from:
    // bring in the `templates/` folder beside it.
    let mut extra = Vec::new();
    for f in out.iter().filter(|_| with_templates) {
        if let Some(dir) = f.parent() {
            let templates = dir.join("templates");
            if templates.is_dir() {
                walk(&templates, &mut extra)
                    .map_err(|e| format!("cannot read folder {}: {e}", templates.display()))?;
            }
        }
    }
    out.extend(extra);
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "flow") {
            out.push(path);
        }
    }
    Ok(())
}

/// Display form of a path: forward slashes, no leading `./`.
pub fn display(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").unwrap_or(&s).to_string()
}

/// Reads the files into a [`Sources`].
pub fn load(files: &[PathBuf]) -> Result<Sources, String> {
    let mut sources = Sources::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        sources.add(display(f), text);
    }
    Ok(sources)
}

/// Loads scripts from disk, relative to the current directory.
pub struct DiskLoader;

impl Loader for DiskLoader {
    fn load(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "the file does not exist".to_string(),
            _ => e.to_string(),
        })
    }
}

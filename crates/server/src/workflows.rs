//! Workflow versions: the texts of every `.flow` file and every script they
//! load, read from disk once and stored with the engine's log, so a restart
//! replays each event against the workflow that was running when it came.

use crate::files;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use switchboard_lang::model::Workflow;
use switchboard_lang::{check, diagnostic, Loader, MemoryLoader, Sources};

/// Every file of one workflow version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowFiles {
    /// `.flow` files by path.
    pub flows: BTreeMap<String, String>,
    /// Scripts by the path the flows name them with.
    pub scripts: BTreeMap<String, String>,
}

/// Reads scripts from disk and remembers what it read.
struct RecordingLoader(RefCell<BTreeMap<String, String>>);

impl Loader for RecordingLoader {
    fn load(&self, path: &str) -> Result<String, String> {
        let text = files::DiskLoader.load(path)?;
        self.0.borrow_mut().insert(path.to_string(), text.clone());
        Ok(text)
    }
}

impl WorkflowFiles {
    /// Reads the `.flow` files under `dir` (with their templates) and the
    /// scripts they load. Returns the files and the checked workflow, or the
    /// rendered diagnostics when they do not check.
    pub fn read(dir: &Path) -> Result<(WorkflowFiles, Workflow), String> {
        let list = files::flow_files(&[dir.to_path_buf()], true)?;
        if list.is_empty() {
            return Err(format!(
                "{} holds no .flow files: the server needs at least one workflow",
                dir.display()
            ));
        }
        let mut sources = files::load(&list)?;
        // The texts as read for the check: what is stored is what was
        // checked, even when a file changes while the server starts.
        let flows = sources
            .iter()
            .map(|(_, f)| (f.path.clone(), f.text.clone()))
            .collect();
        let loader = RecordingLoader(RefCell::new(BTreeMap::new()));
        let checked = check(&mut sources, &loader);
        if checked.has_errors() {
            return Err(diagnostic::render(&checked.diagnostics, &sources));
        }
        let files = WorkflowFiles {
            flows,
            scripts: loader.0.into_inner(),
        };
        Ok((files, checked.workflow))
    }

    /// Checks the stored texts again (on replay).
    pub fn check(&self) -> Result<Workflow, String> {
        let mut sources = Sources::new();
        for (path, text) in &self.flows {
            sources.add(path.clone(), text.clone());
        }
        let checked = check(&mut sources, &MemoryLoader(self.scripts.clone()));
        if checked.has_errors() {
            return Err(diagnostic::render(&checked.diagnostics, &sources));
        }
        Ok(checked.workflow)
    }

    /// The files as JSON, for the store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored version.
    pub fn from_json(json: &str) -> Result<WorkflowFiles, String> {
        serde_json::from_str(json).map_err(|e| format!("a stored workflow version is damaged: {e}"))
    }

    /// A fingerprint of the texts: the same files give the same hash.
    pub fn hash(&self) -> String {
        switchboard_store::body_hash(self.to_json().as_bytes())
    }
}

/// Why a new workflow cannot replace the running one, if it cannot: a pipe
/// that still has open cards may not disappear (its cards would have
/// nowhere to be).
pub fn refuse_change(
    old: &Workflow,
    new: &Workflow,
    open_cards: &BTreeMap<String, usize>,
) -> Option<String> {
    let gone: Vec<String> = old
        .pipes
        .iter()
        .filter(|p| new.pipe(&p.name).is_none())
        .filter_map(|p| {
            open_cards
                .get(&p.name)
                .filter(|n| **n > 0)
                .map(|n| format!("pipe `{}` ({n} open cards)", p.name))
        })
        .collect();
    if gone.is_empty() {
        None
    } else {
        Some(format!(
            "the new workflow removes {} that still has open cards; close them or keep the pipe",
            gone.join(", ")
        ))
    }
}

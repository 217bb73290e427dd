//! Diagnostics: what is wrong, where, and what to do about it.
//!
//! One data model, two renderers: rustc-style text for people and JSON for
//! tools. Every diagnostic has a stable code with a page in `docs/errors/`.

use crate::source::{Sources, Span};
use serde::Serialize;
use std::fmt::Write as _;

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot run.
    Error,
    /// The workflow runs, but probably not as meant.
    Warning,
}

/// One finding, pointing at a span.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Stable code, `WF0001` ...
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// One sentence: lowercase, no final period, names in backticks.
    pub message: String,
    /// Where.
    pub span: Span,
    /// A short text under the caret.
    pub label: Option<String>,
    /// What to do, e.g. "did you mean `in_progress`?".
    pub help: Option<String>,
    /// Other places worth seeing (the first definition of a duplicate ...).
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            span,
            label: None,
            help: None,
            notes: Vec::new(),
        }
    }
    /// A warning.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }
    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    /// Adds a help line when there is one.
    pub fn with_help_opt(mut self, help: Option<String>) -> Diagnostic {
        if help.is_some() {
            self.help = help;
        }
        self
    }
    /// Adds a label under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }
    /// Adds a note pointing elsewhere.
    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Diagnostic {
        self.notes.push((span, note.into()));
        self
    }
    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts by file path, then position, then code; drops exact repeats.
pub fn sort(diags: &mut Vec<Diagnostic>, sources: &Sources) {
    let path = |d: &Diagnostic| {
        sources
            .get(d.span.file)
            .map(|f| f.path.clone())
            .unwrap_or_default()
    };
    diags.sort_by(|a, b| {
        (path(a), a.span.start, a.span.end, a.code, &a.message).cmp(&(
            path(b),
            b.span.start,
            b.span.end,
            b.code,
            &b.message,
        ))
    });
    diags.dedup_by(|a, b| {
        a.span.key() == b.span.key() && a.code == b.code && a.message == b.message
    });
}

/// `did you mean ...?` for the candidate closest to `word`, if any is close.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate closest to `word`, when it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let score = if c.to_lowercase() == lower {
            1.0
        } else {
            let d = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
            let limit = (word.chars().count().max(c.chars().count()) / 3).max(1);
            if d > limit {
                continue;
            }
            strsim::jaro_winkler(&lower, &c.to_lowercase())
        };
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Renders diagnostics the way rustc does:
///
/// ```text
/// workflows/support.flow:47:8: error[WF0002]: unknown status `in_progres`
///    |
/// 47 |   move in_progres
///    |        ^^^^^^^^^^ did you mean `in_progress`?
/// ```
pub fn render(diags: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diags {
        render_one(&mut out, d, sources);
        out.push('\n');
    }
    out
}

fn render_one(out: &mut String, d: &Diagnostic, sources: &Sources) {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let Some(file) = sources.get(d.span.file) else {
        let _ = writeln!(out, "{sev}[{}]: {}", d.code, d.message);
        return;
    };
    let (line, col) = file.line_col(d.span.start as usize);
    let _ = writeln!(
        out,
        "{}:{line}:{col}: {sev}[{}]: {}",
        file.path, d.code, d.message
    );
    // The label goes under the caret; a help that fits there goes there too.
    let under = d
        .label
        .clone()
        .or_else(|| d.help.clone().filter(|h| h.starts_with("did you mean")));
    excerpt(out, sources, d.span, under.as_deref());
    for (span, note) in &d.notes {
        if let Some(f) = sources.get(span.file) {
            let (l, c) = f.line_col(span.start as usize);
            let _ = writeln!(out, "   = note: {note} ({}:{l}:{c})", f.path);
        }
    }
    if let Some(help) = &d.help {
        if under.as_deref() != Some(help.as_str()) {
            let _ = writeln!(out, "   = help: {help}");
        }
    }
}

fn excerpt(out: &mut String, sources: &Sources, span: Span, label: Option<&str>) {
    let Some(file) = sources.get(span.file) else {
        return;
    };
    let (line, col) = file.line_col(span.start as usize);
    let text = file.line_text(line);
    let (end_line, end_col) = file.line_col(span.end as usize);
    let width = line.to_string().len();
    let caret_len = if end_line == line {
        end_col.saturating_sub(col).max(1)
    } else {
        text.chars().count().saturating_sub(col - 1).max(1)
    };
    // Tabs would shift the caret; show them as one space each.
    let shown: String = text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "{:width$} |", "");
    let _ = writeln!(out, "{line} | {shown}");
    let _ = write!(
        out,
        "{:width$} | {}{}",
        "",
        " ".repeat(col - 1),
        "^".repeat(caret_len)
    );
    if let Some(label) = label {
        let _ = write!(out, " {label}");
    }
    out.push('\n');
}

/// One diagnostic as a JSON object (`check --format json` prints one per line).
pub fn to_json(d: &Diagnostic, sources: &Sources) -> serde_json::Value {
    let file = sources.get(d.span.file);
    let (line, col) = file
        .map(|f| f.line_col(d.span.start as usize))
        .unwrap_or((0, 0));
    let (end_line, end_col) = file
        .map(|f| f.line_col(d.span.end as usize))
        .unwrap_or((0, 0));
    serde_json::json!({
        "file": file.map(|f| f.path.as_str()),
        "line": line,
        "column": col,
        "end_line": end_line,
        "end_column": end_col,
        "severity": d.severity,
        "code": d.code,
        "message": d.message,
        "label": d.label,
        "help": d.help,
        "notes": d.notes.iter().map(|(s, n)| {
            let f = sources.get(s.file);
            let (l, c) = f.map(|f| f.line_col(s.start as usize)).unwrap_or((0, 0));
            serde_json::json!({"file": f.map(|f| f.path.as_str()), "line": l, "column": c, "message": n})
        }).collect::<Vec<_>>(),
        "docs": format!("docs/errors/{}.md", d.code),
    })
}

//! Sharing templates between teams: one template, with every template it is
//! built from, as one self-contained file that another team can import.

use crate::ast::{File, Item, Template};
use crate::parse::parse;
use crate::source::{FileId, Sources};
use std::collections::BTreeMap;

/// The text of a self-contained file holding template `name` and the
/// templates it is built from (those first), in the canonical layout.
/// Errors are one sentence for the person exporting.
pub fn export_template(sources: &Sources, name: &str) -> Result<String, String> {
    let mut parsed: Vec<(FileId, File, bool)> = Vec::new();
    for (id, f) in sources.iter().filter(|(_, f)| f.path.ends_with(".flow")) {
        let (tree, diags) = parse(id, &f.text);
        parsed.push((id, tree, diags.iter().any(|d| d.is_error())));
    }
    let mut templates: BTreeMap<&str, (FileId, &Template, bool)> = BTreeMap::new();
    for (id, tree, broken) in &parsed {
        for item in &tree.items {
            if let Item::Template(t) = item {
                templates
                    .entry(t.name.text.as_str())
                    .or_insert((*id, t, *broken));
            }
        }
    }
    // The template and what it is built from, dependencies first.
    let mut order: Vec<&str> = Vec::new();
    let mut path: Vec<&str> = Vec::new();
    let mut current = Some(name);
    while let Some(n) = current {
        if path.contains(&n) {
            path.push(n);
            return Err(format!(
                "template `{name}` is built from itself: {}",
                path.join(" -> ")
            ));
        }
        let Some((id, t, broken)) = templates.get(n) else {
            let known: Vec<&str> = templates.keys().copied().collect();
            let hint = crate::diagnostic::did_you_mean(n, known.iter().copied())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(format!("no template named `{n}` in the workflows{hint}"));
        };
        if *broken {
            let file = sources.get(*id).map(|f| f.path.as_str()).unwrap_or("?");
            return Err(format!(
                "{file} has syntax errors; fix them first (switchboard check)"
            ));
        }
        path.push(n);
        order.push(n);
        current = t.from.as_ref().map(|f| f.template.text.as_str());
    }
    order.reverse();
    let mut out = format!(
        "# Template `{name}`, exported by Switchboard to share with other teams.\n# Import it with: switchboard template import FILE\n\n"
    );
    for n in &order {
        let (id, t, _) = templates[n];
        // The comment lines right above a template describe it: keep them.
        let text = sources.get(id).map(|f| f.text.as_str()).unwrap_or("");
        let before = &text[..t.span.start as usize];
        let mut start = before.len();
        let mut taken = start;
        for line in before.lines().rev() {
            let is_comment = line.trim_start().starts_with('#');
            if !is_comment && !line.trim().is_empty() {
                break;
            }
            taken = before[..taken].trim_end_matches(['\n', '\r']).len() - line.len();
            if is_comment {
                start = taken;
            }
        }
        out.push_str(before[start..].trim_start_matches(['\n', '\r']));
        out.push_str(sources.slice(t.span));
        out.push_str("\n\n");
    }
    crate::fmt::format(&out)
        .map_err(|_| format!("template `{name}` could not be written out; please report this"))
}

/// The names of the templates a shared file defines, or why it cannot be
/// imported (it must parse, and hold templates only).
pub fn templates_in(text: &str) -> Result<Vec<String>, String> {
    let (tree, diags) = parse(FileId(0), text);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(format!(
            "the file does not read as a workflow: {}",
            d.message
        ));
    }
    let mut names = Vec::new();
    for item in &tree.items {
        match item {
            Item::Template(t) => names.push(t.name.text.clone()),
            Item::Pipe(p) => {
                return Err(format!(
                    "the file defines pipe `{}`; a shared file holds templates only",
                    p.name.text
                ))
            }
        }
    }
    if names.is_empty() {
        return Err("the file holds no template".to_string());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_brings_the_templates_it_is_built_from() {
        let mut s = Sources::new();
        s.add(
            "t/base.flow",
            "# base\ntemplate base(number) {\n  number $number\n  status open open initial\n}\n",
        );
        s.add(
            "t/desk.flow",
            "template desk(number) from base(number: $number) {\n  team d { a@x.com }\n}\n",
        );
        let out = export_template(&s, "desk").expect("exports");
        let base = out.find("template base").expect("base inside");
        let desk = out.find("template desk").expect("desk inside");
        assert!(base < desk, "{out}");
        assert_eq!(
            templates_in(&out),
            Ok(vec!["base".to_string(), "desk".to_string()])
        );
        assert!(export_template(&s, "dsk")
            .unwrap_err()
            .contains("did you mean `desk`?"));
    }

    #[test]
    fn a_file_with_a_pipe_is_not_a_shared_template() {
        assert!(templates_in("pipe p {\n  status a open initial\n}\n")
            .unwrap_err()
            .contains("pipe `p`"));
        assert!(templates_in("template t( {").is_err());
        assert!(templates_in("# nothing\n").is_err());
    }
}

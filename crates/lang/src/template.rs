//! Templates: `pipe hr from helpdesk(number: "...", agents: [...]) { overrides }`.
//!
//! Expansion works on the syntax tree: the template's statements are copied,
//! each `$param` is replaced by the argument's value (which keeps the span of
//! the argument, so a bad value is reported where the user wrote it), and the
//! pipe's own statements then replace same-named ones or are added.

use crate::ast::*;
use crate::codes;
use crate::diagnostic::{did_you_mean, Diagnostic};
use std::collections::{BTreeMap, HashSet};

/// All templates of all files, by name.
pub(crate) type Templates<'a> = BTreeMap<String, &'a Template>;

/// The statements of a pipe after its template is applied.
/// `None` when the template cannot be applied (the reason is reported).
pub(crate) fn expand_pipe(
    pipe: &Pipe,
    templates: &Templates,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Stmt>> {
    match &pipe.from {
        None => Some(pipe.body.clone()),
        Some(from) => {
            let mut stack = Vec::new();
            expand_from(from, templates, &mut stack, diags)
                .map(|base| merge(base, pipe.body.clone()))
        }
    }
}

fn expand_from(
    from: &FromClause,
    templates: &Templates,
    stack: &mut Vec<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Stmt>> {
    let name = &from.template.text;
    let Some(template) = templates.get(name) else {
        diags.push(
            Diagnostic::error(
                codes::UNKNOWN_TEMPLATE,
                from.template.span,
                format!("unknown template `{name}`"),
            )
            .with_help_opt(did_you_mean(name, templates.keys().map(String::as_str))),
        );
        return None;
    };
    if stack.contains(name) {
        let mut chain = stack.clone();
        chain.push(name.clone());
        let start = chain.iter().position(|n| n == name).unwrap_or(0);
        diags.push(
            Diagnostic::error(
                codes::TEMPLATE_CYCLE,
                from.template.span,
                format!(
                    "template `{name}` is built from itself: {}",
                    chain[start..].join(" -> ")
                ),
            )
            .with_help("a template can use another one, but never, through others, itself"),
        );
        return None;
    }
    // Bind arguments to parameters.
    let mut values: BTreeMap<String, Atom> = BTreeMap::new();
    let param_names: Vec<&str> = template
        .params
        .iter()
        .map(|p| p.name.text.as_str())
        .collect();
    for (arg, value) in &from.args {
        if !param_names.contains(&arg.text.as_str()) {
            let help = did_you_mean(&arg.text, param_names.iter().copied())
                .unwrap_or_else(|| format!("template `{name}` takes: {}", param_names.join(", ")));
            diags.push(
                Diagnostic::error(
                    codes::TEMPLATE_PARAM,
                    arg.span,
                    format!("template `{name}` has no parameter `{}`", arg.text),
                )
                .with_help(help),
            );
        } else if values.insert(arg.text.clone(), value.clone()).is_some() {
            diags.push(Diagnostic::error(
                codes::DUPLICATE,
                arg.span,
                format!("`{}` is given twice", arg.text),
            ));
        }
    }
    let mut missing = false;
    for p in &template.params {
        if !values.contains_key(&p.name.text) {
            missing |= p.default.is_none();
            match &p.default {
                Some(d) => {
                    values.insert(p.name.text.clone(), d.clone());
                }
                None => diags.push(
                    Diagnostic::error(
                        codes::TEMPLATE_PARAM,
                        from.template.span,
                        format!("template `{name}` needs a value for `{}`", p.name.text),
                    )
                    .with_help(format!("add `{}: ...` inside the parentheses", p.name.text))
                    .with_note(p.name.span, "the parameter is declared here"),
                ),
            }
        }
    }
    if missing {
        return None;
    }
    stack.push(name.clone());
    let body = match &template.from {
        Some(inner) => {
            let mut inner = inner.clone();
            for (_, a) in inner.args.iter_mut() {
                substitute(a, &values);
            }
            expand_from(&inner, templates, stack, diags)
                .map(|base| merge(base, template.body.clone()))
        }
        None => Some(template.body.clone()),
    };
    stack.pop();
    let mut body = body?;
    for stmt in body.iter_mut() {
        atoms_mut(stmt, &mut |a| substitute(a, &values));
        splice_lists(stmt);
    }
    Some(body)
}

fn substitute(atom: &mut Atom, values: &BTreeMap<String, Atom>) {
    match &mut atom.kind {
        AtomKind::Param(p) => {
            if let Some(v) = values.get(p.as_str()) {
                *atom = v.clone();
            }
        }
        AtomKind::List(items) => items.iter_mut().for_each(|i| substitute(i, values)),
        _ => {}
    }
}

/// A list given for a team's members or holidays becomes its items.
fn splice_lists(stmt: &mut Stmt) {
    let flatten = |atoms: &mut Vec<Atom>| {
        let mut out = Vec::with_capacity(atoms.len());
        for a in atoms.drain(..) {
            match a.kind {
                AtomKind::List(items) => out.extend(items),
                _ => out.push(a),
            }
        }
        *atoms = out;
    };
    match &mut stmt.kind {
        StmtKind::Team { members, .. } => flatten(members),
        StmtKind::Holidays(days) => flatten(days),
        _ => {}
    }
}

/// Which statements of a template a pipe's statement replaces.
fn key(stmt: &Stmt) -> Option<String> {
    Some(match &stmt.kind {
        StmtKind::Number { .. } => "number".into(),
        StmtKind::Timezone(_) => "timezone".into(),
        StmtKind::Hours(_) => "hours".into(),
        StmtKind::Holidays(_) => "holidays".into(),
        StmtKind::Field { name, .. } => format!("field {}", name.text),
        StmtKind::Status { name, .. } => format!("status {}", name.text),
        StmtKind::Flow { from, .. } => format!("flow {}", from.text),
        StmtKind::Team { name, .. } => format!("team {}", name.text),
        StmtKind::Sla {
            kind, when: None, ..
        } => format!("sla {}", kind.text),
        StmtKind::Route { name, .. } => format!("route {}", name.text),
        StmtKind::Rule { name: Some(n), .. } => format!("rule {}", n.text),
        StmtKind::View { name, .. } => format!("view {}", name.text),
        _ => return None,
    })
}

/// The template's statements with the pipe's overrides applied: a pipe
/// statement replaces the template's statements of the same key, in place;
/// the others are added at the end.
pub(crate) fn merge(base: Vec<Stmt>, overrides: Vec<Stmt>) -> Vec<Stmt> {
    let override_keys: HashSet<String> = overrides.iter().filter_map(key).collect();
    let mut placed: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(base.len() + overrides.len());
    for stmt in base {
        match key(&stmt) {
            Some(k) if override_keys.contains(&k) => {
                if placed.insert(k.clone()) {
                    out.extend(
                        overrides
                            .iter()
                            .filter(|o| key(o).as_deref() == Some(k.as_str()))
                            .cloned(),
                    );
                }
            }
            _ => out.push(stmt),
        }
    }
    for o in overrides {
        match key(&o) {
            Some(k) if placed.contains(&k) => {}
            _ => out.push(o),
        }
    }
    out
}

/// Reports `$name`s that are not parameters of the template they are in,
/// and `$name`s used in pipes, which have no parameters.
pub(crate) fn check_params(
    body: &[Stmt],
    from: Option<&FromClause>,
    params: Option<&[Param]>,
    diags: &mut Vec<Diagnostic>,
) {
    let names: Vec<&str> = params
        .unwrap_or(&[])
        .iter()
        .map(|p| p.name.text.as_str())
        .collect();
    let mut used = HashSet::new();
    let mut visit = |a: &Atom| {
        let mut stack = vec![a];
        while let Some(a) = stack.pop() {
            match &a.kind {
                AtomKind::Param(p) => {
                    used.insert(p.clone());
                    if params.is_none() {
                        diags.push(
                            Diagnostic::error(
                                codes::TEMPLATE_PARAM,
                                a.span,
                                format!("`${p}` can only be used inside a template"),
                            )
                            .with_help("a pipe has no parameters: write the value itself"),
                        );
                    } else if !names.contains(&p.as_str()) {
                        let help = crate::diagnostic::closest(p, names.iter().copied())
                            .map(|c| format!("did you mean `${c}`?"))
                            .unwrap_or_else(|| format!("declare it: `template name(..., {p})`"));
                        diags.push(
                            Diagnostic::error(
                                codes::TEMPLATE_PARAM,
                                a.span,
                                format!("`${p}` is not a parameter of this template"),
                            )
                            .with_help(help),
                        );
                    }
                }
                AtomKind::List(items) => stack.extend(items.iter()),
                _ => {}
            }
        }
    };
    for stmt in body {
        let mut s = stmt.clone();
        atoms_mut(&mut s, &mut |a| visit(a));
    }
    if let Some(f) = from {
        for (_, a) in &f.args {
            visit(a);
        }
    }
    if let Some(params) = params {
        for p in params {
            if !used.contains(&p.name.text) {
                diags.push(Diagnostic::warning(
                    codes::TEMPLATE_PARAM,
                    p.name.span,
                    format!("parameter `{}` is never used in the template", p.name.text),
                ));
            }
        }
    }
}

/// Calls `f` on every value in a statement.
pub(crate) fn atoms_mut(stmt: &mut Stmt, f: &mut dyn FnMut(&mut Atom)) {
    match &mut stmt.kind {
        StmtKind::Number { number, id } => {
            f(number);
            if let Some(i) = id {
                f(i)
            }
        }
        StmtKind::Timezone(a) | StmtKind::Hours(a) => f(a),
        StmtKind::Holidays(v) => v.iter_mut().for_each(f),
        StmtKind::Field {
            choices, default, ..
        } => {
            if let Some(c) = choices {
                c.iter_mut().for_each(&mut *f);
            }
            if let Some(d) = default {
                f(d)
            }
        }
        StmtKind::Status { .. } | StmtKind::Flow { .. } => {}
        StmtKind::Team { members, .. } => members.iter_mut().for_each(f),
        StmtKind::Sla {
            window, warn, when, ..
        } => {
            f(window);
            if let Some(w) = warn {
                f(w)
            }
            if let Some(c) = when {
                cond_atoms(c, f)
            }
        }
        StmtKind::Route { entries, .. } => {
            for e in entries {
                e.keys.iter_mut().for_each(&mut *f);
                f(&mut e.target);
            }
        }
        StmtKind::Rule {
            trigger,
            when,
            actions,
            ..
        } => {
            if let Some(a) = &mut trigger.arg {
                f(a)
            }
            if let Some(a) = &mut trigger.duration {
                f(a)
            }
            if let Some(c) = when {
                cond_atoms(c, f)
            }
            actions.iter_mut().for_each(|a| action_atoms(a, f));
        }
        StmtKind::Every {
            cron,
            when,
            actions,
        } => {
            f(cron);
            if let Some(c) = when {
                cond_atoms(c, f)
            }
            actions.iter_mut().for_each(|a| action_atoms(a, f));
        }
        StmtKind::View { title, filter, .. } => {
            if let Some(t) = title {
                f(t)
            }
            if let Some(c) = filter {
                cond_atoms(c, f)
            }
        }
    }
}

fn cond_atoms(c: &mut Cond, f: &mut dyn FnMut(&mut Atom)) {
    match c {
        Cond::And(a, b, _) | Cond::Or(a, b, _) => {
            cond_atoms(a, f);
            cond_atoms(b, f);
        }
        Cond::Not(a, _) | Cond::Paren(a, _) => cond_atoms(a, f),
        Cond::Compare { rhs, .. } => f(rhs),
        Cond::ScriptFile(a) => f(a),
        Cond::WithinHours(_) | Cond::ScriptInline(_) | Cond::BadOperator(_) => {}
    }
}

fn action_atoms(a: &mut Action, f: &mut dyn FnMut(&mut Atom)) {
    match &mut a.kind {
        ActionKind::Assign { target, .. } => f(target),
        ActionKind::Unassign => {}
        ActionKind::Set { value, .. } => match value {
            Value::Atom(a) | Value::ScriptFile(a) => f(a),
            Value::ScriptInline(_) => {}
        },
        ActionKind::Move(a)
        | ActionKind::Reply(a)
        | ActionKind::Note(a)
        | ActionKind::Webhook(a) => f(a),
        ActionKind::ReplyTemplate {
            name,
            language,
            params,
        } => {
            f(name);
            if let Some(l) = language {
                f(l)
            }
            if let Some(p) = params {
                f(p)
            }
        }
        ActionKind::Notify { to, text, .. } => {
            if let Some(t) = to {
                f(t)
            }
            f(text)
        }
    }
}

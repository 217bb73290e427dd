//! The checker: syntax trees in, a [`Workflow`] and every diagnostic out.
//!
//! It never stops at the first problem. Each statement is checked on its
//! own; a name that failed to resolve is left out of the model (and not
//! reported again), so one typo gives one error.

use crate::ast::{self, Atom, AtomKind, Cond, Ident, Stmt, StmtKind};
use crate::codes;
use crate::diagnostic::{self, closest, did_you_mean, Diagnostic};
use crate::model::*;
use crate::parse::parse;
use crate::source::{FileId, Sources, Span};
use crate::template::{self, Templates};
use crate::values::{self, BusinessHours, ValueError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use switchboard_script::Sandbox;

/// Reads files the workflows name (scripts). The CLI reads the disk; tests
/// and the server can hand in texts from memory.
pub trait Loader {
    /// The text at a path, or one sentence saying why it cannot be read.
    fn load(&self, path: &str) -> Result<String, String>;
}

/// A loader over files held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryLoader(pub BTreeMap<String, String>);

impl Loader for MemoryLoader {
    fn load(&self, path: &str) -> Result<String, String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    }
}

/// What a check gives: the workflow (complete only when there are no
/// errors) and every diagnostic, sorted.
#[derive(Debug)]
pub struct Checked {
    /// The checked model. Use it only when `has_errors()` is false.
    pub workflow: Workflow,
    /// Every error and warning of every file, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// What text templates (reply, note, notify) may look at.
pub const TEXT_GLOBALS: &[&str] = &[
    "card", "contact", "message", "pipe", "agent", "now", "count",
];

/// Checks every `.flow` file in `sources`. Scripts the workflows name are
/// loaded through `loader` and added to `sources`, so that their errors can
/// be shown with their own lines.
pub fn check(sources: &mut Sources, loader: &dyn Loader) -> Checked {
    let mut diags = Vec::new();
    let flow_files: Vec<FileId> = sources
        .iter()
        .filter(|(_, f)| f.path.ends_with(".flow"))
        .map(|(id, _)| id)
        .collect();
    let mut files = Vec::new();
    for id in flow_files {
        let text = sources.get(id).map(|f| f.text.clone()).unwrap_or_default();
        let (file, mut d) = parse(id, &text);
        diags.append(&mut d);
        files.push(file);
    }

    // Templates of all files, by name.
    let mut templates: Templates = BTreeMap::new();
    for file in &files {
        for item in &file.items {
            if let ast::Item::Template(t) = item {
                if let Some(first) = templates.get(&t.name.text) {
                    diags.push(duplicate("template", &t.name, first.name.span));
                } else {
                    templates.insert(t.name.text.clone(), t);
                }
                template::check_params(&t.body, t.from.as_ref(), Some(&t.params), &mut diags);
            }
        }
    }

    let sandbox = Sandbox::default();
    let mut workflow = Workflow::default();
    let mut pipe_names: HashMap<String, Span> = HashMap::new();
    let mut numbers: HashMap<String, (String, Span)> = HashMap::new();
    for file in &files {
        for item in &file.items {
            let ast::Item::Pipe(p) = item else { continue };
            // `$name` in a pipe is a mistake; only look when the text has a `$`.
            if sources.slice(p.span).contains('$') {
                template::check_params(&p.body, None, None, &mut diags);
            }
            if let Some(first) = pipe_names.get(&p.name.text) {
                diags.push(duplicate("pipe", &p.name, *first));
                continue;
            }
            pipe_names.insert(p.name.text.clone(), p.name.span);
            let Some(stmts) = template::expand_pipe(p, &templates, &mut diags) else {
                // The template error says what is wrong; checking a pipe
                // without its template would only repeat it in other words.
                continue;
            };
            let mut checker =
                PipeChecker::new(sources, loader, &sandbox, &mut diags, p.name.text.clone());
            let pipe = checker.pipe(p, &stmts, &templates);
            for (n, span) in checker.number_spans.drain(..) {
                if let Some((other, other_span)) = numbers.get(&n) {
                    diags.push(
                        Diagnostic::error(
                            codes::NUMBER_TAKEN,
                            span,
                            format!("this number already feeds pipe `{other}`"),
                        )
                        .with_help("each WhatsApp number feeds exactly one pipe")
                        .with_note(*other_span, format!("pipe `{other}` has it here")),
                    );
                } else {
                    numbers.insert(n, (p.name.text.clone(), span));
                }
            }
            workflow.pipes.push(pipe);
        }
    }
    diagnostic::sort(&mut diags, sources);
    Checked {
        workflow,
        diagnostics: diags,
    }
}

fn duplicate(what: &str, name: &Ident, first: Span) -> Diagnostic {
    Diagnostic::error(
        codes::DUPLICATE,
        name.span,
        format!("{what} `{}` is defined twice", name.text),
    )
    .with_help("rename one of them, or remove one")
    .with_note(first, "first defined here")
}

/// The type of what a condition looks at.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Text,
    Number,
    Date,
    Bool,
    /// One of these words (shared: statuses and choices are looked up often).
    Words(&'static str, Rc<[String]>),
    Agent,
}

const SLA_STATES: &[&str] = &["ok", "warning", "breached", "none"];
const RESPONDERS: &[&str] = &["team", "customer"];
const MESSAGE_ATTRS: &[&str] = &["text", "type", "from", "id"];
const CARD_ATTRS: &[&str] = &["number", "status", "team", "assignee", "sla"];
const BUILTIN_SUBJECTS: &[&str] = &["status", "team", "assignee", "sla", "last_responder"];
const TRIGGERS: &[&str] = &[
    "card.created",
    "message.received",
    "message.sent",
    "status.changed",
    "field.changed",
    "card.assigned",
    "sla.warning",
    "sla.breached",
    "idle",
    "window.closing",
];

/// Where a condition is: rules know the message that started them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Rule,
    Schedule,
    View,
    Sla,
}

impl Place {
    fn name(self) -> &'static str {
        match self {
            Place::Rule => "a rule",
            Place::Schedule => "a schedule",
            Place::View => "a view",
            Place::Sla => "an `sla` line",
        }
    }
}

struct PipeChecker<'a> {
    sources: &'a mut Sources,
    loader: &'a dyn Loader,
    sandbox: &'a Sandbox,
    diags: &'a mut Vec<Diagnostic>,
    pipe: String,
    fields: Vec<Field>,
    field_spans: HashMap<String, Span>,
    statuses: Vec<Status>,
    status_spans: HashMap<String, Span>,
    teams: Vec<Team>,
    routes: Vec<Route>,
    team_spans: HashMap<String, Span>,
    has_hours: bool,
    number_spans: Vec<(String, Span)>,
    /// The types of the fields, by name (built as fields are declared).
    field_tys: HashMap<String, Ty>,
    /// Status and team names, built once the declarations are read.
    status_words: Rc<[String]>,
    team_words: Rc<[String]>,
    /// Checking a schedule without `when`: there is no card.
    no_card: bool,
    /// Checking a schedule: there is no message.
    in_schedule: bool,
    /// Compiles reply texts (one environment for the whole pipe).
    jinja: minijinja::Environment<'static>,
    /// Names declared in statements that did not parse: not reported again.
    broken: BTreeSet<String>,
    scripts: HashMap<String, Option<switchboard_script::CompiledScript>>,
}

impl<'a> PipeChecker<'a> {
    fn new(
        sources: &'a mut Sources,
        loader: &'a dyn Loader,
        sandbox: &'a Sandbox,
        diags: &'a mut Vec<Diagnostic>,
        pipe: String,
    ) -> Self {
        PipeChecker {
            sources,
            loader,
            sandbox,
            diags,
            pipe,
            fields: Vec::new(),
            field_spans: HashMap::new(),
            statuses: Vec::new(),
            status_spans: HashMap::new(),
            teams: Vec::new(),
            routes: Vec::new(),
            team_spans: HashMap::new(),
            has_hours: false,
            number_spans: Vec::new(),
            field_tys: HashMap::new(),
            jinja: minijinja::Environment::new(),
            no_card: false,
            in_schedule: false,
            status_words: Rc::from(Vec::new()),
            team_words: Rc::from(Vec::new()),
            broken: BTreeSet::new(),
            scripts: HashMap::new(),
        }
    }

    fn err(&mut self, code: &'static str, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags.push(Diagnostic::error(code, span, msg));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn origin(&self, span: Span) -> Origin {
        match self.sources.get(span.file) {
            Some(f) => {
                let (line, column) = f.line_col(span.start as usize);
                Origin {
                    file: f.path.clone(),
                    line: line as u32,
                    column: column as u32,
                }
            }
            None => Origin {
                file: String::new(),
                line: 0,
                column: 0,
            },
        }
    }

    /// A span inside a quoted string atom, when the string has no escapes.
    fn inner_span(&self, atom: &Atom, at: Option<(usize, usize)>) -> Span {
        let (Some((s, e)), AtomKind::Str(text)) = (at, &atom.kind) else {
            return atom.span;
        };
        if self.sources.slice(atom.span).len() == text.len() + 2 {
            atom.span.sub(s + 1, e + 1)
        } else {
            atom.span
        }
    }

    fn value_error(&mut self, code: &'static str, atom: &Atom, e: ValueError) {
        let span = self.inner_span(atom, e.at);
        let d = Diagnostic::error(code, span, e.message).with_help_opt(e.help);
        self.push(d);
    }

    /// The text of a single value; reports lists where one value belongs.
    fn scalar<'b>(&mut self, atom: &'b Atom, what: &str) -> Option<&'b str> {
        match &atom.kind {
            AtomKind::Str(s) => Some(s),
            AtomKind::Word(s) if !s.is_empty() => Some(s),
            AtomKind::Word(_) => {
                self.err(codes::SYNTAX, atom.span, format!("{what} is missing"));
                None
            }
            AtomKind::List(_) => {
                self.err(
                    codes::WRONG_TYPE,
                    atom.span,
                    format!("expected {what}, found a list"),
                );
                None
            }
            AtomKind::Param(_) => None, // reported by the template check
        }
    }

    fn quoted<'b>(&mut self, atom: &'b Atom, what: &str) -> Option<&'b str> {
        match &atom.kind {
            AtomKind::Str(s) => Some(s),
            AtomKind::Word(w) if !w.is_empty() => {
                let d = Diagnostic::error(
                    codes::WRONG_TYPE,
                    atom.span,
                    format!("{what} must be in double quotes"),
                )
                .with_help(format!("write \"{w}\""));
                self.push(d);
                None
            }
            _ => self.scalar(atom, what),
        }
    }

    // ------------------------------------------------------------ the pipe

    fn pipe(&mut self, decl: &ast::Pipe, stmts: &[Stmt], templates: &Templates) -> Pipe {
        self.broken.extend(decl.broken.iter().cloned());
        let mut from = decl.from.as_ref();
        let mut seen = BTreeSet::new();
        while let Some(f) = from {
            // Templates may form a cycle (reported elsewhere): visit each once.
            if !seen.insert(f.template.text.clone()) {
                break;
            }
            let Some(t) = templates.get(&f.template.text) else {
                break;
            };
            self.broken.extend(t.broken.iter().cloned());
            from = t.from.as_ref();
        }
        let mut numbers = Vec::new();
        let mut timezone = None;
        let mut hours = None;
        let mut holidays = Vec::new();
        let mut seen_single: HashMap<&'static str, Span> = HashMap::new();
        let mut single = |me: &mut Self, what: &'static str, span: Span| {
            if let Some(first) = seen_single.get(what) {
                let d = Diagnostic::error(
                    codes::DUPLICATE,
                    span,
                    format!("`{what}` is given twice in pipe `{}`", me.pipe),
                )
                .with_note(*first, "first given here");
                me.push(d);
                false
            } else {
                seen_single.insert(what, span);
                true
            }
        };

        // Pass 1: declarations.
        for stmt in stmts {
            match &stmt.kind {
                StmtKind::Number { number, id } => {
                    let Some(text) = self.quoted(number, "the phone number") else {
                        continue;
                    };
                    match values::phone_digits(text) {
                        Ok(digits) => {
                            let id = id.as_ref().and_then(|i| {
                                self.scalar(i, "the phone_number_id").map(str::to_string)
                            });
                            if let Some(i) = &id {
                                if !i.chars().all(|c| c.is_ascii_digit()) || i.is_empty() {
                                    let d = Diagnostic::error(
                                        codes::BAD_PHONE,
                                        stmt.span,
                                        format!("`{i}` is not a phone_number_id: Meta's ids are digits only"),
                                    );
                                    self.push(d);
                                }
                            }
                            self.number_spans.push((digits.clone(), number.span));
                            numbers.push(PhoneNumber {
                                display: text.to_string(),
                                digits,
                                phone_number_id: id,
                            });
                        }
                        Err(e) => self.value_error(codes::BAD_PHONE, number, e),
                    }
                }
                StmtKind::Timezone(a) => {
                    if !single(self, "timezone", stmt.span) {
                        continue;
                    }
                    let Some(text) = self.quoted(a, "the time zone") else {
                        continue;
                    };
                    match text.parse::<chrono_tz::Tz>() {
                        Ok(tz) => timezone = Some(tz),
                        Err(_) => {
                            let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
                            let help = did_you_mean(text, names).unwrap_or_else(|| {
                                "use a name from the tz database, such as \"America/Sao_Paulo\""
                                    .into()
                            });
                            let d = Diagnostic::error(
                                codes::BAD_TIMEZONE,
                                a.span,
                                format!("unknown time zone `{text}`"),
                            )
                            .with_help(help);
                            self.push(d);
                        }
                    }
                }
                StmtKind::Hours(a) => {
                    if !single(self, "hours", stmt.span) {
                        continue;
                    }
                    self.has_hours = true;
                    let Some(text) = self.quoted(a, "the business hours") else {
                        continue;
                    };
                    match values::business_hours(text) {
                        Ok(h) => hours = Some(h),
                        Err(e) => self.value_error(codes::BAD_HOURS, a, e),
                    }
                }
                StmtKind::Holidays(days) => {
                    for a in days {
                        let Some(text) = self.scalar(a, "a date") else {
                            continue;
                        };
                        match values::date(text) {
                            Ok(d) => holidays.push(d),
                            Err(e) => self.value_error(codes::BAD_DATE, a, e),
                        }
                    }
                }
                StmtKind::Field {
                    name,
                    ty,
                    choices,
                    default,
                    shown,
                } => {
                    self.field(name, ty, choices.as_deref(), default.as_ref(), *shown);
                }
                StmtKind::Status { name, modifiers } => self.status(name, modifiers),
                StmtKind::Team { name, members } => self.team(name, members),
                _ => {}
            }
        }
        if self.statuses.is_empty() {
            let d = Diagnostic::error(
                codes::MISSING_SETTING,
                decl.name.span,
                format!("pipe `{}` has no statuses", self.pipe),
            )
            .with_help("add at least one, such as `status new open initial`");
            self.push(d);
        } else {
            let initial: Vec<&Status> = self.statuses.iter().filter(|s| s.initial).collect();
            if initial.is_empty() {
                let first = &self.statuses[0].name;
                let span = self
                    .status_spans
                    .get(first)
                    .copied()
                    .unwrap_or(decl.name.span);
                let d = Diagnostic::error(
                    codes::NO_INITIAL,
                    decl.name.span,
                    format!("pipe `{}` has no initial status", self.pipe),
                )
                .with_help(format!(
                    "mark where new cards start, for example `status {first} open initial`"
                ))
                .with_note(span, "the first status is here");
                self.push(d);
            } else if initial.len() > 1 {
                let names: Vec<String> = initial.iter().map(|s| s.name.clone()).collect();
                let first = self
                    .status_spans
                    .get(&names[0])
                    .copied()
                    .unwrap_or(decl.name.span);
                for n in &names[1..] {
                    let span = self.status_spans.get(n).copied().unwrap_or(decl.name.span);
                    let d = Diagnostic::error(
                        codes::SEVERAL_INITIAL,
                        span,
                        format!("`{n}` is marked initial, but `{}` already is", names[0]),
                    )
                    .with_help(
                        "new cards start in exactly one status: remove `initial` from all but one",
                    )
                    .with_note(first, "the other initial status");
                    self.push(d);
                }
            }
        }
        self.status_words = self.statuses.iter().map(|s| s.name.clone()).collect();
        self.team_words = self.teams.iter().map(|t| t.name.clone()).collect();
        // Routes before rules: rules assign to them.
        for stmt in stmts {
            if let StmtKind::Route { name, by, entries } = &stmt.kind {
                self.route(name, by, entries, stmt.span);
            }
        }

        // Pass 2: flows, SLAs, rules, schedules, views.
        let flows = self.flows(stmts);
        let mut slas = Vec::new();
        let mut rules = Vec::new();
        let mut rule_names: HashMap<String, Span> = HashMap::new();
        let mut rule_spans = Vec::new();
        let mut schedules = Vec::new();
        let mut views = Vec::new();
        let mut view_names: HashMap<String, Span> = HashMap::new();
        let ctx = MoveCtx {
            flows: flows.clone(),
            statuses: self.statuses.clone(),
        };
        for stmt in stmts {
            match &stmt.kind {
                StmtKind::Sla {
                    kind,
                    window,
                    business,
                    warn,
                    when,
                } => {
                    if let Some(s) = self.sla(
                        kind,
                        window,
                        *business,
                        warn.as_ref(),
                        when.as_ref(),
                        stmt.span,
                    ) {
                        slas.push((s, stmt.span, when.clone()));
                    }
                }
                StmtKind::Rule {
                    name,
                    trigger,
                    when,
                    actions,
                } => {
                    if let Some(n) = name {
                        if let Some(first) = rule_names.get(&n.text) {
                            self.push(duplicate("rule", n, *first));
                        } else {
                            rule_names.insert(n.text.clone(), n.span);
                        }
                    }
                    if let Some(r) = self.rule(
                        name.as_ref(),
                        trigger,
                        when.as_ref(),
                        actions,
                        stmt.span,
                        &ctx,
                    ) {
                        rule_spans.push(stmt.span);
                        rules.push(r);
                    }
                }
                StmtKind::Every {
                    cron,
                    when,
                    actions,
                } => {
                    if let Some(s) = self.schedule(cron, when.as_ref(), actions, stmt.span, &ctx) {
                        schedules.push(s);
                    }
                }
                StmtKind::View {
                    name,
                    title,
                    filter,
                    sort,
                } => {
                    if let Some(first) = view_names.get(&name.text) {
                        self.push(duplicate("view", name, *first));
                        continue;
                    }
                    view_names.insert(name.text.clone(), name.span);
                    if let Some(v) = self.view(name, title.as_ref(), filter.as_ref(), sort.as_ref())
                    {
                        views.push(v);
                    }
                }
                _ => {}
            }
        }
        self.sla_overlaps(&slas);
        self.rule_loops(&rules, &rule_spans);

        let title = match &decl.title {
            Some(t) => self
                .quoted(t, "the pipe's title")
                .unwrap_or_default()
                .to_string(),
            None => decl.name.text.clone(),
        };
        let wrote_number = stmts
            .iter()
            .any(|s| matches!(s.kind, StmtKind::Number { .. }));
        if numbers.is_empty() && !wrote_number {
            let d = Diagnostic::warning(
                codes::MISSING_SETTING,
                decl.name.span,
                format!(
                    "pipe `{}` has no `number`: no WhatsApp message will reach it",
                    self.pipe
                ),
            )
            .with_help("add the number that feeds it, such as `number \"+55 11 4000-1000\"`");
            self.push(d);
        }
        if hours.is_some() && timezone.is_none() && !seen_single.contains_key("timezone") {
            let d = Diagnostic::warning(
                codes::MISSING_SETTING,
                decl.name.span,
                format!(
                    "pipe `{}` has business hours but no `timezone`: they are read as UTC",
                    self.pipe
                ),
            )
            .with_help("add `timezone \"America/Sao_Paulo\"` (or your own)");
            self.push(d);
        }
        Pipe {
            name: decl.name.text.clone(),
            title,
            origin: self.origin(decl.name.span),
            numbers,
            timezone: timezone.unwrap_or(chrono_tz::UTC),
            hours: hours.unwrap_or_else(BusinessHours::always),
            holidays,
            fields: std::mem::take(&mut self.fields),
            statuses: std::mem::take(&mut self.statuses),
            flows,
            teams: std::mem::take(&mut self.teams),
            slas: slas.into_iter().map(|(s, _, _)| s).collect(),
            routes: std::mem::take(&mut self.routes),
            rules,
            schedules,
            views,
        }
    }

    // ------------------------------------------------------------ declarations

    fn field(
        &mut self,
        name: &Ident,
        ty: &Ident,
        choices: Option<&[Atom]>,
        default: Option<&Atom>,
        shown: bool,
    ) {
        if let Some(first) = self.field_spans.get(&name.text) {
            let d = duplicate("field", name, *first);
            self.push(d);
            return;
        }
        if BUILTIN_SUBJECTS.contains(&name.text.as_str()) {
            self.err(
                codes::DUPLICATE,
                name.span,
                format!(
                    "`{}` is a built-in part of every card and cannot be a field name",
                    name.text
                ),
            )
            .help = Some("choose another name".into());
            return;
        }
        const TYPES: &[&str] = &["text", "number", "choice", "date", "bool", "agent"];
        let ty_span = ty.span;
        let ty = match ty.text.as_str() {
            "text" => FieldType::Text,
            "number" => FieldType::Number,
            "date" => FieldType::Date,
            "bool" => FieldType::Bool,
            "agent" => FieldType::Agent,
            "choice" => {
                let Some(list) = choices else {
                    self.err(
                        codes::WRONG_TYPE,
                        ty.span,
                        "a choice field needs its values",
                    )
                    .help = Some(format!(
                        "write `field {}: choice(low, normal, high)`",
                        name.text
                    ));
                    return;
                };
                let mut values: Vec<String> = Vec::new();
                for a in list {
                    let Some(v) = self.scalar(a, "a choice value") else {
                        continue;
                    };
                    if values.iter().any(|x| x == v) {
                        self.err(
                            codes::DUPLICATE,
                            a.span,
                            format!("choice value `{v}` is listed twice"),
                        );
                    } else {
                        values.push(v.to_string());
                    }
                }
                if values.is_empty() {
                    self.err(
                        codes::WRONG_TYPE,
                        ty.span,
                        "a choice field needs at least one value",
                    );
                    return;
                }
                FieldType::Choice(values)
            }
            other => {
                let help = did_you_mean(other, TYPES.iter().copied()).unwrap_or_else(|| {
                    "field types are text, number, choice(...), date, bool and agent".into()
                });
                self.err(
                    codes::UNKNOWN_WORD,
                    ty.span,
                    format!("unknown field type `{other}`"),
                )
                .help = Some(help);
                return;
            }
        };
        if choices.is_some() && !matches!(ty, FieldType::Choice(_)) {
            self.err(
                codes::WRONG_TYPE,
                ty_span,
                format!(
                    "only choice fields take a list of values, and `{}` is {}",
                    name.text, ty
                ),
            );
        }
        let default = default.and_then(|d| {
            self.typed_value(d, &ty_of_field(&ty), &format!("field `{}`", name.text))
        });
        self.field_spans.insert(name.text.clone(), name.span);
        self.field_tys.insert(name.text.clone(), ty_of_field(&ty));
        self.fields.push(Field {
            name: name.text.clone(),
            ty,
            default,
            shown,
        });
    }

    fn status(&mut self, name: &Ident, modifiers: &[Ident]) {
        if let Some(first) = self.status_spans.get(&name.text) {
            let d = duplicate("status", name, *first);
            self.push(d);
            return;
        }
        let mut kind = None;
        let (mut initial, mut is_final) = (false, false);
        for m in modifiers {
            if let Some((_, k)) = StatusKind::ALL.iter().find(|(n, _)| *n == m.text) {
                if kind.is_some() {
                    self.err(
                        codes::UNKNOWN_WORD,
                        m.span,
                        format!("status `{}` has two kinds", name.text),
                    )
                    .help =
                        Some("a status has one kind: open, active, paused, done or closed".into());
                }
                kind = Some(*k);
            } else if m.text == "initial" {
                initial = true;
            } else if m.text == "final" {
                is_final = true;
            } else {
                let words = StatusKind::ALL
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(["initial", "final"]);
                let help = did_you_mean(&m.text, words).unwrap_or_else(|| {
                    "after the name come the kind (open, active, paused, done or closed) and `initial` or `final`".into()
                });
                self.err(
                    codes::UNKNOWN_WORD,
                    m.span,
                    format!("unknown word `{}` in status `{}`", m.text, name.text),
                )
                .help = Some(help);
            }
        }
        let kind = kind.unwrap_or(if initial {
            StatusKind::Open
        } else if is_final {
            StatusKind::Closed
        } else {
            StatusKind::Active
        });
        self.status_spans.insert(name.text.clone(), name.span);
        self.statuses.push(Status {
            name: name.text.clone(),
            kind,
            initial,
            is_final,
        });
    }

    fn team(&mut self, name: &Ident, members: &[Atom]) {
        if let Some(first) = self.team_spans.get(&name.text) {
            let d = duplicate("team", name, *first);
            self.push(d);
            return;
        }
        let mut list: Vec<String> = Vec::new();
        for m in members {
            let Some(email) = self.scalar(m, "an agent's e-mail") else {
                continue;
            };
            if let Err(e) = values::email(email) {
                self.value_error(codes::BAD_EMAIL, m, e);
            } else if list.iter().any(|x| x.eq_ignore_ascii_case(email)) {
                self.err(
                    codes::DUPLICATE,
                    m.span,
                    format!("`{email}` is listed twice in team `{}`", name.text),
                );
            } else {
                list.push(email.to_string());
            }
        }
        self.team_spans.insert(name.text.clone(), name.span);
        self.teams.push(Team {
            name: name.text.clone(),
            members: list,
        });
    }

    fn route(&mut self, name: &Ident, by: &Ident, entries: &[ast::RouteEntry], span: Span) {
        if let Some(first) = self.team_spans.get(&name.text) {
            let what = if self.teams.iter().any(|t| t.name == name.text) {
                "team"
            } else {
                "route"
            };
            let d = Diagnostic::error(
                codes::DUPLICATE,
                name.span,
                format!("`{}` is already the name of a {what}", name.text),
            )
            .with_help(
                "teams and routes share one set of names: `assign` must know which one you mean",
            )
            .with_note(*first, "first defined here");
            self.push(d);
            return;
        }
        // Routes are looked up by `assign` in rules, where the message is known.
        let Some(subject) = self.subject(by, Place::Rule) else {
            return;
        };
        let ty = self.subject_type(&subject);
        let is_phone = matches!(&subject, Subject::Contact(a) if a == "phone" || a == "wa_id");
        let mut keys_seen: HashMap<String, Span> = HashMap::new();
        let mut table = Vec::new();
        let mut otherwise = None;
        for e in entries {
            let target = self.scalar(&e.target, "a team name").map(str::to_string);
            let target = target.and_then(|t| self.team_name(&t, e.target.span));
            if e.is_else {
                if otherwise.is_some() {
                    self.err(
                        codes::DUPLICATE,
                        e.span,
                        format!("route `{}` has two `else` lines", name.text),
                    );
                }
                otherwise = Some(target);
                continue;
            }
            for k in &e.keys {
                let Some(text) = self.scalar(k, "a key") else {
                    continue;
                };
                let key = if is_phone {
                    match values::phone_prefix(text) {
                        Ok(d) => d,
                        Err(err) => {
                            self.value_error(codes::BAD_PHONE, k, err);
                            continue;
                        }
                    }
                } else {
                    match &ty {
                        Ty::Words(what, words) => {
                            if !words.iter().any(|w| w == text) {
                                let help = did_you_mean(text, words.iter().map(String::as_str))
                                    .unwrap_or_else(|| {
                                        format!("the values of {what} are: {}", words.join(", "))
                                    });
                                self.err(
                                    codes::CHOICE_VALUE,
                                    k.span,
                                    format!("`{text}` is not one of the values of {what}"),
                                )
                                .help = Some(help);
                                continue;
                            }
                        }
                        Ty::Text => {}
                        other => {
                            // Numbers, dates, yes/no and agents are typed like anywhere else.
                            if self
                                .typed_value(k, other, &format!("`{subject}`"))
                                .is_none()
                            {
                                continue;
                            }
                        }
                    }
                    text.to_string()
                };
                // Keys other than phone prefixes match ignoring case.
                let key_id = if is_phone {
                    key.clone()
                } else {
                    key.to_lowercase()
                };
                if let Some(first) = keys_seen.get(&key_id) {
                    let d = Diagnostic::error(
                        codes::DUPLICATE,
                        k.span,
                        format!("`{text}` appears twice in route `{}`", name.text),
                    )
                    .with_note(*first, "first here");
                    self.push(d);
                    continue;
                }
                keys_seen.insert(key_id, k.span);
                if let Some(t) = &target {
                    table.push((key, t.clone()));
                }
            }
        }
        self.team_spans.insert(name.text.clone(), name.span);
        match otherwise {
            None => {
                self.err(
                    codes::ROUTE_WITHOUT_ELSE,
                    span,
                    format!("route `{}` has no `else` line", name.text),
                )
                .help = Some(
                    "add `else -> TEAM` as the last line, for values that match no line".into(),
                );
            }
            Some(t) => self.routes.push(Route {
                name: name.text.clone(),
                by: subject,
                entries: table,
                otherwise: t.unwrap_or_default(),
            }),
        }
    }

    fn team_name(&mut self, name: &str, span: Span) -> Option<String> {
        if self.teams.iter().any(|t| t.name == name) {
            return Some(name.to_string());
        }
        if self.broken.contains(name) {
            return None;
        }
        let names: Vec<String> = self.teams.iter().map(|t| t.name.clone()).collect();
        let help = did_you_mean(name, names.iter().map(String::as_str)).unwrap_or_else(|| {
            format!(
                "the teams of pipe `{}` are: {}",
                self.pipe,
                list_or_none(&names)
            )
        });
        self.err(codes::UNKNOWN_TEAM, span, format!("unknown team `{name}`"))
            .help = Some(help);
        None
    }

    fn status_name(&mut self, name: &str, span: Span) -> Option<String> {
        if self.statuses.iter().any(|s| s.name == name) {
            return Some(name.to_string());
        }
        if self.broken.contains(name) {
            return None;
        }
        let names: Vec<String> = self.statuses.iter().map(|s| s.name.clone()).collect();
        let help = did_you_mean(name, names.iter().map(String::as_str)).unwrap_or_else(|| {
            format!(
                "the statuses of pipe `{}` are: {}",
                self.pipe,
                list_or_none(&names)
            )
        });
        self.err(
            codes::UNKNOWN_STATUS,
            span,
            format!("unknown status `{name}`"),
        )
        .help = Some(help);
        None
    }

    // ------------------------------------------------------------ flows

    fn flows(&mut self, stmts: &[Stmt]) -> Option<BTreeMap<String, Vec<String>>> {
        let mut flows: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut any = false;
        let mut from_spans: HashMap<String, Span> = HashMap::new();
        for stmt in stmts {
            let StmtKind::Flow { from, to } = &stmt.kind else {
                continue;
            };
            any = true;
            let from_name = self.status_name(&from.text, from.span);
            if let Some(f) = &from_name {
                if let Some(s) = self.statuses.iter().find(|s| &s.name == f) {
                    if s.is_final {
                        let d = Diagnostic::error(
                            codes::FINAL_WITH_FLOW,
                            from.span,
                            format!("`{f}` is a final status, so no card may move on from it"),
                        )
                        .with_help(format!(
                            "remove this line, or remove `final` from status `{f}`"
                        ))
                        .with_note(self.status_spans[f], "marked final here");
                        self.push(d);
                    }
                }
                from_spans.entry(f.clone()).or_insert(from.span);
            }
            for t in to {
                let Some(tn) = self.status_name(&t.text, t.span) else {
                    continue;
                };
                if let Some(f) = &from_name {
                    let list = flows.entry(f.clone()).or_default();
                    if list.contains(&tn) {
                        self.err(
                            codes::DUPLICATE,
                            t.span,
                            format!("the move `{f} -> {tn}` is listed twice"),
                        );
                    } else if &tn == f {
                        self.diags.push(Diagnostic::warning(
                            codes::DUPLICATE,
                            t.span,
                            format!("`{f} -> {f}` is not a move: a card is already there"),
                        ));
                    } else {
                        list.push(tn);
                    }
                }
            }
        }
        if !any {
            return None;
        }
        // Which statuses can a card reach from the initial one?
        if let Some(initial) = self
            .statuses
            .iter()
            .find(|s| s.initial)
            .map(|s| s.name.clone())
        {
            let mut seen = BTreeSet::from([initial.clone()]);
            let mut todo = vec![initial];
            while let Some(s) = todo.pop() {
                for t in flows.get(&s).into_iter().flatten() {
                    if seen.insert(t.clone()) {
                        todo.push(t.clone());
                    }
                }
            }
            for s in self.statuses.clone() {
                if !seen.contains(&s.name) {
                    let span = self.status_spans[&s.name];
                    self.diags.push(
                        Diagnostic::warning(
                            codes::UNREACHABLE_STATUS,
                            span,
                            format!(
                                "no card can ever reach status `{}`: no flow leads there",
                                s.name
                            ),
                        )
                        .with_help(format!(
                            "add it to a `flow` line, such as `flow ... -> {}`",
                            s.name
                        )),
                    );
                }
            }
        }
        Some(flows)
    }

    // ------------------------------------------------------------ SLAs

    fn sla(
        &mut self,
        kind: &Ident,
        window: &Atom,
        business: bool,
        warn: Option<&Atom>,
        when: Option<&Cond>,
        span: Span,
    ) -> Option<Sla> {
        let k = match SlaKind::ALL.iter().find(|(n, _)| *n == kind.text) {
            Some((_, k)) => Some(*k),
            None => {
                let help = did_you_mean(&kind.text, SlaKind::ALL.iter().map(|(n, _)| *n))
                    .unwrap_or_else(|| {
                        "SLA kinds are first_response, next_response and resolution".into()
                    });
                self.err(
                    codes::UNKNOWN_SLA_KIND,
                    kind.span,
                    format!("unknown SLA kind `{}`", kind.text),
                )
                .help = Some(help);
                None
            }
        };
        let window_secs = self.duration(window);
        let warn_secs = warn.and_then(|w| self.duration(w));
        if let (Some(w), Some(wn), Some(a)) = (window_secs, warn_secs, warn) {
            if wn >= w {
                self.err(
                    codes::BAD_DURATION,
                    a.span,
                    format!(
                        "the warning at `{}` comes after the window of `{}` ends",
                        values::format_duration(wn),
                        values::format_duration(w)
                    ),
                )
                .help = Some("warn earlier than the end of the window".into());
            }
        }
        if business && !self.has_hours {
            self.err(
                codes::MISSING_SETTING,
                span,
                format!(
                    "`business` counts only business hours, but pipe `{}` has no `hours` line",
                    self.pipe
                ),
            )
            .help = Some("add `hours \"Mon-Fri 09:00-18:00\"`, or remove `business`".into());
        }
        let when = when.and_then(|c| self.condition(c, Place::Sla));
        Some(Sla {
            kind: k?,
            window_secs: window_secs?,
            business,
            warn_secs,
            when,
            origin: self.origin(span),
        })
    }

    fn duration(&mut self, a: &Atom) -> Option<u64> {
        let text = self.scalar(a, "a duration")?;
        match values::duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.value_error(codes::BAD_DURATION, a, e);
                None
            }
        }
    }

    fn sla_overlaps(&mut self, slas: &[(Sla, Span, Option<Cond>)]) {
        let mut seen: HashMap<(SlaKind, String), Span> = HashMap::new();
        for (s, span, when) in slas {
            // Compared by meaning: the tree's JSON leaves the positions out.
            let key = (
                s.kind,
                when.as_ref()
                    .map(|c| serde_json::to_string(c).unwrap_or_default())
                    .unwrap_or_default(),
            );
            if let Some(first) = seen.get(&key) {
                let d = Diagnostic::error(
                    codes::SLA_OVERLAP,
                    *span,
                    format!("two `{}` windows apply to the same cards", s.kind.name()),
                )
                .with_help(if when.is_some() {
                    "both lines have the same `when`: keep one, or change one condition"
                } else {
                    "keep one, or add `when ...` to say which cards get this one"
                })
                .with_note(*first, "the other window");
                self.push(d);
            } else {
                seen.insert(key, *span);
            }
        }
    }

    // ------------------------------------------------------------ conditions

    fn subject(&mut self, path: &Ident, place: Place) -> Option<Subject> {
        let text = path.text.as_str();
        if let Some((root, attr)) = text.split_once('.') {
            let bad_attr = |me: &mut Self, known: &[&str], what: &str| {
                let help = did_you_mean(attr, known.iter().copied())
                    .unwrap_or_else(|| format!("{what} has: {}", known.join(", ")));
                me.err(
                    codes::UNKNOWN_PATH,
                    path.span,
                    format!("{what} has no `{attr}`"),
                )
                .help = Some(help);
                None
            };
            if attr.contains('.') {
                self.err(
                    codes::UNKNOWN_PATH,
                    path.span,
                    format!("`{text}` goes too deep: write `{root}.NAME`"),
                );
                return None;
            }
            return match root {
                "contact" => Some(Subject::Contact(attr.to_string())),
                "message" if place != Place::Rule => {
                    self.err(
                        codes::UNKNOWN_PATH,
                        path.span,
                        format!("there is no message in {}", place.name()),
                    )
                    .help = Some(
                        "`message.` can be used in rules, which start with a message or a change"
                            .into(),
                    );
                    None
                }
                "message" if MESSAGE_ATTRS.contains(&attr) => {
                    Some(Subject::Message(attr.to_string()))
                }
                "message" => bad_attr(self, MESSAGE_ATTRS, "a message"),
                "card" if CARD_ATTRS.contains(&attr) => Some(match attr {
                    "status" => Subject::Status,
                    "team" => Subject::Team,
                    "assignee" => Subject::Assignee,
                    "sla" => Subject::Sla,
                    _ => Subject::Card(attr.to_string()),
                }),
                "card" => {
                    if self.fields.iter().any(|f| f.name == attr) {
                        return Some(Subject::Field(attr.to_string()));
                    }
                    bad_attr(self, CARD_ATTRS, "a card")
                }
                _ => {
                    let help =
                        did_you_mean(root, ["contact", "message", "card"]).unwrap_or_else(|| {
                            "names with a dot start with `contact.`, `message.` or `card.`".into()
                        });
                    self.err(
                        codes::UNKNOWN_PATH,
                        path.span,
                        format!("unknown name `{root}` in `{text}`"),
                    )
                    .help = Some(help);
                    None
                }
            };
        }
        match text {
            "status" => Some(Subject::Status),
            "team" => Some(Subject::Team),
            "assignee" => Some(Subject::Assignee),
            "sla" => Some(Subject::Sla),
            "last_responder" => Some(Subject::LastResponder),
            f if self.fields.iter().any(|x| x.name == f) => Some(Subject::Field(f.to_string())),
            other if self.broken.contains(other) => None,
            other => {
                let mut names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
                names.extend_from_slice(BUILTIN_SUBJECTS);
                let help = did_you_mean(other, names.iter().copied()).unwrap_or_else(|| {
                    format!(
                        "the fields of pipe `{}` are: {}",
                        self.pipe,
                        list_or_none(
                            &self
                                .fields
                                .iter()
                                .map(|f| f.name.clone())
                                .collect::<Vec<_>>()
                        )
                    )
                });
                self.err(
                    codes::UNKNOWN_FIELD,
                    path.span,
                    format!("unknown field `{other}`"),
                )
                .help = Some(help);
                None
            }
        }
    }

    fn subject_type(&self, s: &Subject) -> Ty {
        match s {
            Subject::Field(f) => self.field_tys.get(f).cloned().unwrap_or(Ty::Text),
            Subject::Status => Ty::Words("the statuses", self.status_words.clone()),
            Subject::Team => Ty::Words("the teams", self.team_words.clone()),
            Subject::Assignee => Ty::Agent,
            Subject::Sla => Ty::Words("`sla`", SLA_STATES.iter().map(|s| s.to_string()).collect()),
            Subject::LastResponder => Ty::Words(
                "`last_responder`",
                RESPONDERS.iter().map(|s| s.to_string()).collect(),
            ),
            Subject::Message(a) if a == "type" => Ty::Words(
                "`message.type`",
                crate::model::MESSAGE_TYPES
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            Subject::Card(a) if a == "number" => Ty::Number,
            _ => Ty::Text,
        }
    }

    fn condition(&mut self, c: &Cond, place: Place) -> Option<Condition> {
        match c {
            Cond::And(a, b, _) => {
                let (a, b) = (self.condition(a, place), self.condition(b, place));
                Some(Condition::And(Box::new(a?), Box::new(b?)))
            }
            Cond::Or(a, b, _) => {
                let (a, b) = (self.condition(a, place), self.condition(b, place));
                Some(Condition::Or(Box::new(a?), Box::new(b?)))
            }
            Cond::Not(a, _) => Some(Condition::Not(Box::new(self.condition(a, place)?))),
            Cond::Paren(a, _) => self.condition(a, place),
            Cond::WithinHours(_) => Some(Condition::WithinHours),
            Cond::ScriptFile(a) => self.script_file(a).map(Condition::Script),
            Cond::ScriptInline(code) => self.script_inline(code).map(Condition::Script),
            Cond::BadOperator(op) => {
                let word = match op.text.as_str() {
                    "&&" => "and",
                    "||" => "or",
                    _ => "not",
                };
                self.err(
                    codes::BAD_OPERATOR,
                    op.span,
                    format!("write `{word}` instead of `{}`", op.text),
                );
                None
            }
            Cond::Compare { lhs, op, rhs } => self.compare(lhs, op, rhs, place),
        }
    }

    fn compare(&mut self, lhs: &Ident, op: &Ident, rhs: &Atom, place: Place) -> Option<Condition> {
        let subject = self.subject(lhs, place);
        let op = match op.text.as_str() {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "~" => Op::Matches,
            "contains" => Op::Contains,
            "in" => Op::In,
            "not in" => Op::NotIn,
            "==" => {
                self.err(
                    codes::BAD_OPERATOR,
                    op.span,
                    "write `=` to compare, not `==`",
                );
                return None;
            }
            other => {
                self.err(
                    codes::BAD_OPERATOR,
                    op.span,
                    format!("`{other}` is not a comparison"),
                )
                .help = Some("did you mean `>=`?".into());
                return None;
            }
        };
        let subject = subject?;
        let ty = self.subject_type(&subject);
        let allowed: &[Op] = match &ty {
            Ty::Text => &[Op::Eq, Op::Ne, Op::In, Op::NotIn, Op::Contains, Op::Matches],
            Ty::Number | Ty::Date => &[
                Op::Eq,
                Op::Ne,
                Op::Lt,
                Op::Le,
                Op::Gt,
                Op::Ge,
                Op::In,
                Op::NotIn,
            ],
            Ty::Bool => &[Op::Eq, Op::Ne],
            Ty::Words(..) | Ty::Agent => &[Op::Eq, Op::Ne, Op::In, Op::NotIn],
        };
        if !allowed.contains(&op) {
            let list: Vec<String> = allowed
                .iter()
                .map(|o| format!("`{}`", o.symbol()))
                .collect();
            self.err(
                codes::OPERATOR_TYPE,
                lhs.span.to(rhs.span),
                format!(
                    "`{}` cannot be used with `{subject}`, which is {}",
                    op.symbol(),
                    ty_name(&ty)
                ),
            )
            .help = Some(format!("use {}", list.join(", ")));
            return None;
        }
        let what = format!("`{subject}`");
        let value = match op {
            Op::In | Op::NotIn => {
                let AtomKind::List(items) = &rhs.kind else {
                    self.err(
                        codes::WRONG_TYPE,
                        rhs.span,
                        format!("`{}` needs a list", op.symbol()),
                    )
                    .help = Some("write the values in brackets, such as `[high, normal]`".into());
                    return None;
                };
                let vals: Vec<Option<crate::model::Value>> = items
                    .iter()
                    .map(|i| self.typed_value(i, &ty, &what))
                    .collect();
                Operand::List(vals.into_iter().collect::<Option<Vec<_>>>()?)
            }
            Op::Matches => {
                let text = self.quoted(rhs, "the pattern")?;
                match Pattern::new(text) {
                    Ok(p) => Operand::Regex(p),
                    Err(why) => {
                        self.err(
                            codes::BAD_REGEX,
                            rhs.span,
                            format!("`{text}` is not a valid pattern: {why}"),
                        )
                        .help = Some(
                            "patterns use `|` for \"or\"; write `\\\\.` for a literal dot".into(),
                        );
                        return None;
                    }
                }
            }
            Op::Contains => Operand::Value(crate::model::Value::Text(
                self.quoted(rhs, "the text to look for")?.to_string(),
            )),
            _ => {
                if let AtomKind::List(_) = rhs.kind {
                    self.err(
                        codes::WRONG_TYPE,
                        rhs.span,
                        "a list can only follow `in` or `not in`",
                    )
                    .help = Some(format!("write `{subject} in [...]`"));
                    return None;
                }
                Operand::Value(self.typed_value(rhs, &ty, &what)?)
            }
        };
        Some(Condition::Compare { subject, op, value })
    }

    /// A value of a type, or a sentence saying why not.
    fn typed_value(&mut self, a: &Atom, ty: &Ty, what: &str) -> Option<crate::model::Value> {
        use crate::model::Value as V;
        if let AtomKind::Param(_) = a.kind {
            return None;
        }
        let text = self.scalar(a, "a value")?;
        if text == "none" && matches!(a.kind, AtomKind::Word(_)) {
            return Some(V::None);
        }
        let bad = |me: &mut Self, msg: String, help: Option<String>| {
            let d = Diagnostic::error(codes::WRONG_TYPE, a.span, msg).with_help_opt(help);
            me.push(d);
            None
        };
        match ty {
            Ty::Text => Some(V::Text(text.to_string())),
            Ty::Number => match values::number(text) {
                Ok(n) => Some(V::Number(n)),
                Err(_) => bad(
                    self,
                    format!("{what} is a number, and `{text}` is not one"),
                    None,
                ),
            },
            Ty::Date => match values::date(text) {
                Ok(d) => Some(V::Date(d)),
                Err(e) => {
                    self.value_error(codes::BAD_DATE, a, e);
                    None
                }
            },
            Ty::Bool => match text {
                "true" | "yes" => Some(V::Bool(true)),
                "false" | "no" => Some(V::Bool(false)),
                _ => bad(
                    self,
                    format!("{what} is yes or no, and `{text}` is neither"),
                    Some("write `true` or `false`".into()),
                ),
            },
            Ty::Agent => match values::email(text) {
                Ok(()) => Some(V::Text(text.to_string())),
                Err(e) => {
                    self.value_error(codes::BAD_EMAIL, a, e);
                    None
                }
            },
            Ty::Words(which, words) => {
                if words.iter().any(|w| w == text) {
                    return Some(V::Text(text.to_string()));
                }
                let code = match *which {
                    "the statuses" => codes::UNKNOWN_STATUS,
                    "the teams" => codes::UNKNOWN_TEAM,
                    _ => codes::CHOICE_VALUE,
                };
                let help =
                    did_you_mean(text, words.iter().map(String::as_str)).unwrap_or_else(|| {
                        match code {
                            codes::CHOICE_VALUE => {
                                format!("the values of {what} are: {}", list_or_none(words))
                            }
                            _ => format!("{which} are: {}", list_or_none(words)),
                        }
                    });
                let msg = match code {
                    codes::UNKNOWN_STATUS => format!("unknown status `{text}`"),
                    codes::UNKNOWN_TEAM => format!("unknown team `{text}`"),
                    _ => format!("`{text}` is not one of the values of {what}"),
                };
                self.err(code, a.span, msg).help = Some(help);
                None
            }
        }
    }

    // ------------------------------------------------------------ scripts and texts

    fn script_file(&mut self, a: &Atom) -> Option<Script> {
        let rel = self.quoted(a, "the script's file name")?.to_string();
        let dir = self
            .sources
            .get(a.span.file)
            .map(|f| f.dir().to_string())
            .unwrap_or_default();
        let path = join_path(&dir, &rel);
        if !self.scripts.contains_key(&path) {
            let compiled = self.load_script(&path, &rel, a.span);
            self.scripts.insert(path.clone(), compiled);
        }
        let compiled = self.scripts.get(&path).cloned().flatten()?;
        Some(Script {
            file: Some(path),
            origin: self.origin(a.span),
            compiled,
        })
    }

    fn load_script(
        &mut self,
        path: &str,
        rel: &str,
        span: Span,
    ) -> Option<switchboard_script::CompiledScript> {
        let (id, text) = match self.sources.find(path) {
            Some(id) => (
                id,
                self.sources
                    .get(id)
                    .map(|f| f.text.clone())
                    .unwrap_or_default(),
            ),
            None => match self.loader.load(path) {
                Ok(text) => (self.sources.add(path, text.clone()), text),
                Err(why) => {
                    self.err(
                        codes::BAD_SCRIPT,
                        span,
                        format!("cannot read script `{rel}` ({path}): {why}"),
                    )
                    .help = Some("script paths are relative to the .flow file's folder".into());
                    return None;
                }
            },
        };
        match self.sandbox.compile(&text) {
            Ok(c) => Some(c),
            Err(e) => {
                let file = self.sources.get(id)?;
                let offset = offset_of(file, e.line, e.column);
                let at = Span::new(id, offset, offset + 1);
                let d = Diagnostic::error(
                    codes::BAD_SCRIPT,
                    at,
                    format!("script `{rel}` does not compile: {}", e.message),
                )
                .with_note(span, "the script is used here");
                self.push(d);
                None
            }
        }
    }

    fn script_inline(&mut self, code: &ast::Code) -> Option<Script> {
        match self.sandbox.compile(&code.text) {
            Ok(c) => Some(Script {
                file: None,
                origin: self.origin(code.span),
                compiled: c,
            }),
            Err(e) => {
                let tmp = crate::source::SourceFile::new("", code.text.clone());
                let off = offset_of(&tmp, e.line, e.column);
                let at = code.span.sub(1 + off, 2 + off);
                self.err(
                    codes::BAD_SCRIPT,
                    at,
                    format!("the script does not compile: {}", e.message),
                );
                None
            }
        }
    }

    fn text(&mut self, a: &Atom, what: &str) -> Option<Text> {
        let src = self.quoted(a, &format!("the {what}"))?.to_string();
        let result = self
            .jinja
            .template_from_str(&src)
            .map(|t| t.undeclared_variables(false));
        match result {
            Ok(vars) => {
                let mut vars: Vec<String> = vars.into_iter().collect();
                vars.sort();
                for v in vars {
                    let no_message = self.in_schedule && v == "message";
                    if no_message
                        || (self.no_card
                            && matches!(v.as_str(), "card" | "contact" | "message" | "agent"))
                    {
                        let at = find_in_code(&src, &v);
                        let span = self.inner_span(a, at);
                        self.err(
                            codes::SCHEDULE_WITHOUT_CARDS,
                            span,
                            if no_message && !self.no_card {
                                "there is no message here: a schedule starts from the clock, not from a message".to_string()
                            } else {
                                format!("there is no {v} here: this schedule does not say which cards it acts on")
                            },
                        )
                        .help = Some("add `when ...` after the schedule to act on each matching card, or use `count(...)`".into());
                    } else if !TEXT_GLOBALS.contains(&v.as_str()) {
                        let at = find_in_code(&src, &v);
                        let span = self.inner_span(a, at);
                        let help =
                            did_you_mean(&v, TEXT_GLOBALS.iter().copied()).unwrap_or_else(|| {
                                format!("a text can use: {}", TEXT_GLOBALS.join(", "))
                            });
                        self.err(
                            codes::UNKNOWN_PATH,
                            span,
                            format!("unknown name `{v}` in the text"),
                        )
                        .help = Some(help);
                    }
                }
                Some(Text {
                    source: Arc::from(src.as_str()),
                })
            }
            Err(e) => {
                let detail = e.detail().unwrap_or("it cannot be read").to_string();
                let at = e.range().map(|r| (r.start, r.end));
                let span = self.inner_span(a, at);
                self.err(codes::BAD_TEXT_TEMPLATE, span, format!("the {what} has a broken `{{{{ }}}}` part: {detail}")).help =
                    Some("write `{{ contact.name }}` to insert a value; `{{` and `}}` must come in pairs".into());
                None
            }
        }
    }

    // ------------------------------------------------------------ rules

    fn trigger(&mut self, t: &ast::Trigger) -> Option<Trigger> {
        let name = t.name.text.as_str();
        if !TRIGGERS.contains(&name) {
            let help = did_you_mean(name, TRIGGERS.iter().copied())
                .unwrap_or_else(|| format!("triggers are: {}", TRIGGERS.join(", ")));
            self.err(
                codes::UNKNOWN_TRIGGER,
                t.name.span,
                format!("unknown trigger `{name}`"),
            )
            .help = Some(help);
            return None;
        }
        let takes_duration = matches!(name, "idle" | "window.closing");
        if let (Some(d), false) = (&t.duration, takes_duration) {
            self.err(
                codes::UNKNOWN_WORD,
                d.span,
                format!("`{name}` takes no duration"),
            );
            return None;
        }
        let arg = t.arg.as_ref();
        let arg_text = match arg {
            Some(a) => Some(self.scalar(a, "a name")?.to_string()),
            None => None,
        };
        let no_arg = |me: &mut Self| {
            if let Some(a) = arg {
                me.err(
                    codes::UNKNOWN_WORD,
                    a.span,
                    format!("`{name}` takes nothing in parentheses"),
                );
                return false;
            }
            true
        };
        Some(match name {
            "card.created" => no_arg(self).then_some(Trigger::CardCreated)?,
            "message.received" => no_arg(self).then_some(Trigger::MessageReceived)?,
            "message.sent" => no_arg(self).then_some(Trigger::MessageSent)?,
            "card.assigned" => no_arg(self).then_some(Trigger::CardAssigned)?,
            "status.changed" => match (arg, arg_text) {
                (Some(a), Some(s)) => Trigger::StatusChanged(Some(self.status_name(&s, a.span)?)),
                _ => Trigger::StatusChanged(None),
            },
            "field.changed" => match (arg, arg_text) {
                (Some(a), Some(f)) => {
                    let ident = Ident {
                        text: f,
                        span: a.span,
                    };
                    match self.subject(&ident, Place::View)? {
                        Subject::Field(f) => Trigger::FieldChanged(f),
                        _ => {
                            self.err(
                                codes::UNKNOWN_FIELD,
                                a.span,
                                format!("`{}` is not a field", ident.text),
                            );
                            return None;
                        }
                    }
                }
                _ => {
                    self.err(
                        codes::UNKNOWN_FIELD,
                        t.span,
                        "`field.changed` needs the field, such as `field.changed(priority)`",
                    );
                    return None;
                }
            },
            "sla.warning" | "sla.breached" => {
                let kind = match (arg, arg_text) {
                    (Some(a), Some(k)) => match SlaKind::ALL.iter().find(|(n, _)| *n == k) {
                        Some((_, k)) => *k,
                        None => {
                            let help = did_you_mean(&k, SlaKind::ALL.iter().map(|(n, _)| *n))
                                .unwrap_or_else(|| {
                                    "SLA kinds are first_response, next_response and resolution"
                                        .into()
                                });
                            self.err(
                                codes::UNKNOWN_SLA_KIND,
                                a.span,
                                format!("unknown SLA kind `{k}`"),
                            )
                            .help = Some(help);
                            return None;
                        }
                    },
                    _ => {
                        self.err(
                            codes::UNKNOWN_SLA_KIND,
                            t.span,
                            format!(
                                "`{name}` needs the SLA kind, such as `{name}(first_response)`"
                            ),
                        );
                        return None;
                    }
                };
                if name == "sla.warning" {
                    Trigger::SlaWarning(kind)
                } else {
                    Trigger::SlaBreached(kind)
                }
            }
            _ => {
                if !no_arg(self) {
                    return None;
                }
                let Some(d) = &t.duration else {
                    self.err(
                        codes::BAD_DURATION,
                        t.span,
                        format!("`{name}` needs a duration, such as `{name} 2h`"),
                    );
                    return None;
                };
                let secs = self.duration(d)?;
                if name == "idle" {
                    Trigger::Idle(secs)
                } else {
                    if secs >= 24 * 3600 {
                        self.err(codes::BAD_DURATION, d.span, "the customer-service window lasts 24 hours, so this would fire at once");
                        return None;
                    }
                    Trigger::WindowClosing(secs)
                }
            }
        })
    }

    fn rule(
        &mut self,
        name: Option<&Ident>,
        trigger: &ast::Trigger,
        when: Option<&Cond>,
        actions: &[ast::Action],
        span: Span,
        ctx: &MoveCtx,
    ) -> Option<Rule> {
        let trig = self.trigger(trigger);
        let condition = when.map(|c| self.condition(c, Place::Rule));
        let from = trig
            .as_ref()
            .map(|t| ctx.sources_of(t, when))
            .unwrap_or(None);
        let acts = self.actions(actions, Place::Rule, from, ctx);
        let origin = self.origin(span);
        let name = match name {
            Some(n) => n.text.clone(),
            None => format!(
                "on {} at line {}",
                self.sources
                    .slice(trigger.span)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                origin.line
            ),
        };
        let condition = match condition {
            Some(None) => return None,
            Some(c) => c,
            None => None,
        };
        Some(Rule {
            name,
            origin,
            trigger: trig?,
            condition,
            actions: acts?,
        })
    }

    fn schedule(
        &mut self,
        cron: &Atom,
        when: Option<&Cond>,
        actions: &[ast::Action],
        span: Span,
        ctx: &MoveCtx,
    ) -> Option<Schedule> {
        let parsed = match self.quoted(cron, "the schedule") {
            Some(text) => match values::cron(text) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.value_error(codes::BAD_CRON, cron, e);
                    None
                }
            },
            None => None,
        };
        let condition = when.map(|c| self.condition(c, Place::Schedule));
        if when.is_none() {
            for a in actions {
                if !matches!(a.kind, ast::ActionKind::Notify { .. }) {
                    let verb = self
                        .sources
                        .slice(a.span)
                        .split_whitespace()
                        .next()
                        .unwrap_or("this")
                        .to_string();
                    self.err(
                        codes::SCHEDULE_WITHOUT_CARDS,
                        a.span,
                        format!("`{verb}` acts on a card, but this schedule does not say which cards"),
                    )
                    .help = Some("add `when ...` after the schedule, such as `every \"0 9 * * *\" when status = waiting`".into());
                }
            }
        }
        let from = when.and_then(|w| ctx.status_conjuncts(w));
        self.no_card = when.is_none();
        self.in_schedule = true;
        let acts = self.actions(actions, Place::Schedule, from, ctx);
        self.no_card = false;
        self.in_schedule = false;
        let (cron, schedule) = parsed?;
        let condition = match condition {
            Some(None) => return None,
            Some(c) => c,
            None => None,
        };
        Some(Schedule {
            cron,
            schedule,
            origin: self.origin(span),
            condition,
            actions: acts?,
        })
    }

    fn actions(
        &mut self,
        actions: &[ast::Action],
        place: Place,
        mut from: Option<Vec<String>>,
        ctx: &MoveCtx,
    ) -> Option<Vec<Action>> {
        let mut out = Vec::new();
        let mut ok = true;
        for a in actions {
            match self.action(a, place, &mut from, ctx) {
                Some(x) => out.push(x),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn action(
        &mut self,
        a: &ast::Action,
        place: Place,
        from: &mut Option<Vec<String>>,
        ctx: &MoveCtx,
    ) -> Option<Action> {
        use ast::ActionKind as K;
        match &a.kind {
            K::Assign { target, modes } => {
                let t = self
                    .scalar(target, "a team, a route or an agent's e-mail")?
                    .to_string();
                let target_kind = if t.contains('@') {
                    if let Err(e) = values::email(&t) {
                        self.value_error(codes::BAD_EMAIL, target, e);
                        return None;
                    }
                    AssignTarget::Agent(t)
                } else if self.teams.iter().any(|x| x.name == t) {
                    AssignTarget::Team(t)
                } else if self.routes.iter().any(|x| x.name == t)
                    || self.team_spans.contains_key(&t)
                {
                    AssignTarget::Route(t)
                } else if self.broken.contains(&t) {
                    return None;
                } else {
                    let mut names: Vec<String> =
                        self.teams.iter().map(|x| x.name.clone()).collect();
                    names.extend(self.routes.iter().map(|r| r.name.clone()));
                    let help =
                        did_you_mean(&t, names.iter().map(String::as_str)).unwrap_or_else(|| {
                            format!(
                                "teams and routes of pipe `{}`: {}",
                                self.pipe,
                                list_or_none(&names)
                            )
                        });
                    self.err(
                        codes::UNKNOWN_TEAM,
                        target.span,
                        format!("unknown team or route `{t}`"),
                    )
                    .help = Some(help);
                    return None;
                };
                let mut mode = None;
                let (mut available, mut sticky) = (false, false);
                const MODES: &[&str] = &["round_robin", "least_busy", "sticky", "available"];
                for m in modes {
                    match m.text.as_str() {
                        "round_robin" | "least_busy" => {
                            if mode.is_some() {
                                self.err(
                                    codes::UNKNOWN_WORD,
                                    m.span,
                                    "choose one of `round_robin` and `least_busy`",
                                );
                            }
                            mode = Some(if m.text == "round_robin" {
                                AssignMode::RoundRobin
                            } else {
                                AssignMode::LeastBusy
                            });
                        }
                        "available" => available = true,
                        "sticky" => sticky = true,
                        other => {
                            let help = did_you_mean(other, MODES.iter().copied())
                                .unwrap_or_else(|| "after the team come `round_robin` or `least_busy`, `sticky` and `available`".into());
                            self.err(
                                codes::UNKNOWN_WORD,
                                m.span,
                                format!("unknown assignment mode `{other}`"),
                            )
                            .help = Some(help);
                            return None;
                        }
                    }
                }
                if matches!(target_kind, AssignTarget::Agent(_)) && !modes.is_empty() {
                    self.err(
                        codes::UNKNOWN_WORD,
                        modes[0].span,
                        "assignment modes choose within a team; an agent is already one person",
                    );
                    return None;
                }
                Some(Action::Assign {
                    target: target_kind,
                    mode: mode.unwrap_or(AssignMode::RoundRobin),
                    available,
                    sticky,
                })
            }
            K::Unassign => Some(Action::Unassign),
            K::Set { field, value } => {
                let subject = self.subject(field, place);
                let f = match subject? {
                    Subject::Field(f) => f,
                    other => {
                        let how = match other {
                            Subject::Status => "use `move` to change the status",
                            Subject::Assignee | Subject::Team => {
                                "use `assign` to change who works on the card"
                            }
                            _ => "only the pipe's fields can be set",
                        };
                        self.err(
                            codes::UNKNOWN_FIELD,
                            field.span,
                            format!("`{}` cannot be set", field.text),
                        )
                        .help = Some(how.into());
                        return None;
                    }
                };
                let ty = self.subject_type(&Subject::Field(f.clone()));
                let v = match value {
                    ast::Value::ScriptFile(s) => SetValue::Script(self.script_file(s)?),
                    ast::Value::ScriptInline(c) => SetValue::Script(self.script_inline(c)?),
                    ast::Value::Atom(atom) => {
                        let path_like = match &atom.kind {
                            AtomKind::Word(w) => {
                                w.contains('.')
                                    && ["contact.", "message.", "card."]
                                        .iter()
                                        .any(|p| w.starts_with(p))
                            }
                            _ => false,
                        };
                        if path_like {
                            let ident = Ident {
                                text: atom.text().unwrap_or_default().to_string(),
                                span: atom.span,
                            };
                            let s = self.subject(&ident, place)?;
                            let sty = self.subject_type(&s);
                            if std::mem::discriminant(&sty) != std::mem::discriminant(&ty)
                                && ty != Ty::Text
                            {
                                self.err(
                                    codes::WRONG_TYPE,
                                    atom.span,
                                    format!(
                                        "`{f}` is {}, and `{s}` is {}",
                                        ty_name(&ty),
                                        ty_name(&sty)
                                    ),
                                );
                                return None;
                            }
                            SetValue::Subject(s)
                        } else {
                            SetValue::Value(self.typed_value(atom, &ty, &format!("field `{f}`"))?)
                        }
                    }
                };
                Some(Action::Set { field: f, value: v })
            }
            K::Move(target) => {
                let t = self.scalar(target, "a status name")?.to_string();
                let t = self.status_name(&t, target.span)?;
                if let Some(sources) = from.as_ref() {
                    for s in sources {
                        if s != &t && !ctx.allows(s, &t) {
                            let allowed = ctx.moves_from(s);
                            let is_final = ctx.statuses.iter().any(|x| &x.name == s && x.is_final);
                            let help = if is_final {
                                format!("`{s}` is final: no card ever leaves it; check the rule's `when`")
                            } else if allowed.is_empty() {
                                format!("no move leaves `{s}`; add a line `flow {s} -> {t}` if cards should go there")
                            } else {
                                format!("from `{s}` a card can go to: {}; add `{t}` to `flow {s} -> ...` to allow it", allowed.join(", "))
                            };
                            self.err(
                                codes::FORBIDDEN_MOVE,
                                target.span,
                                format!("this rule moves cards from `{s}` to `{t}`, but the flow does not allow it"),
                            )
                            .help = Some(help);
                            return None;
                        }
                    }
                } else if ctx.flows.is_some()
                    && !ctx
                        .statuses
                        .iter()
                        .any(|s| s.name != t && ctx.allows(&s.name, &t))
                {
                    self.err(
                        codes::FORBIDDEN_MOVE,
                        target.span,
                        format!("no flow leads to `{t}`, so this move is always refused"),
                    )
                    .help = Some(format!("add `{t}` to a `flow` line"));
                    return None;
                }
                *from = Some(vec![t.clone()]);
                Some(Action::Move(t))
            }
            K::Reply(text) => Some(Action::Reply(self.text(text, "reply text")?)),
            K::Note(text) => Some(Action::Note(self.text(text, "note text")?)),
            K::ReplyTemplate {
                name,
                language,
                params,
            } => {
                let n = self.scalar(name, "the template's name")?.to_string();
                let Some(lang) = language else {
                    self.err(
                        codes::MISSING_SETTING,
                        a.span,
                        "a template reply needs its language",
                    )
                    .help = Some(format!("write `reply template \"{n}\" language \"pt_BR\"`"));
                    return None;
                };
                let lang = self.scalar(lang, "a language code")?.to_string();
                let mut ps = Vec::new();
                if let Some(p) = params {
                    let AtomKind::List(items) = &p.kind else {
                        self.err(
                            codes::WRONG_TYPE,
                            p.span,
                            "`params` needs a list, such as `[contact.name]`",
                        );
                        return None;
                    };
                    for item in items {
                        match &item.kind {
                            AtomKind::Word(w) if w.contains('.') => {
                                let ident = Ident {
                                    text: w.clone(),
                                    span: item.span,
                                };
                                self.subject(&ident, place)?;
                                ps.push(Text {
                                    source: Arc::from(format!("{{{{ {w} }}}}").as_str()),
                                });
                            }
                            _ => ps.push(self.text(item, "template parameter text")?),
                        }
                    }
                }
                Some(Action::ReplyTemplate {
                    name: n,
                    language: lang,
                    params: ps,
                })
            }
            K::Notify { kind, to, text } => {
                let target = match (kind.text.as_str(), to) {
                    ("team", Some(t)) => {
                        let name = self.scalar(t, "a team name")?.to_string();
                        NotifyTarget::Team(self.team_name(&name, t.span)?)
                    }
                    ("agent", Some(t)) => {
                        let email = self.scalar(t, "an agent's e-mail")?.to_string();
                        if let Err(e) = values::email(&email) {
                            self.value_error(codes::BAD_EMAIL, t, e);
                            return None;
                        }
                        NotifyTarget::Agent(email)
                    }
                    ("manager", None) => NotifyTarget::Manager,
                    ("assignee", None) => NotifyTarget::Assignee,
                    ("team" | "agent", None) => {
                        self.err(
                            codes::SYNTAX,
                            kind.span,
                            format!("`notify {}` needs to say which one", kind.text),
                        )
                        .help = Some(format!("write `notify {} NAME \"text\"`", kind.text));
                        return None;
                    }
                    ("manager" | "assignee", Some(t)) => {
                        self.err(
                            codes::UNKNOWN_WORD,
                            t.span,
                            format!("`notify {}` takes no name", kind.text),
                        );
                        return None;
                    }
                    (other, _) => {
                        let help = did_you_mean(other, ["team", "agent", "manager", "assignee"])
                            .unwrap_or_else(|| {
                                "notify `team`, `agent`, `manager` or `assignee`".into()
                            });
                        self.err(
                            codes::UNKNOWN_WORD,
                            kind.span,
                            format!("cannot notify `{other}`"),
                        )
                        .help = Some(help);
                        return None;
                    }
                };
                if self.no_card && target == NotifyTarget::Assignee {
                    self.err(
                        codes::SCHEDULE_WITHOUT_CARDS,
                        kind.span,
                        "there is no assignee here: this schedule does not say which cards it acts on",
                    )
                    .help = Some("add `when ...` after the schedule, or notify a team".into());
                    return None;
                }
                Some(Action::Notify {
                    to: target,
                    text: self.text(text, "notification text")?,
                })
            }
            K::Webhook(url) => {
                let u = self.quoted(url, "the address")?.to_string();
                match url::Url::parse(&u) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {
                        Some(Action::Webhook(u))
                    }
                    Ok(_) => {
                        self.err(
                            codes::BAD_URL,
                            url.span,
                            format!("`{u}` is not a web address: it must start with https://"),
                        );
                        None
                    }
                    Err(_) => {
                        self.err(
                            codes::BAD_URL,
                            url.span,
                            format!("`{u}` is not a web address"),
                        )
                        .help =
                            Some("write it in full, such as \"https://example.com/hook\"".into());
                        None
                    }
                }
            }
        }
    }

    fn view(
        &mut self,
        name: &Ident,
        title: Option<&Atom>,
        filter: Option<&Cond>,
        sort: Option<&(Ident, Option<Ident>)>,
    ) -> Option<View> {
        let title = match title {
            Some(t) => self.quoted(t, "the view's title")?.to_string(),
            None => name.text.clone(),
        };
        let filter = match filter {
            Some(c) => Some(self.condition(c, Place::View)?),
            None => None,
        };
        let sort = match sort {
            None => None,
            Some((key, dir)) => {
                let k = match key.text.as_str() {
                    "due" => SortKey::Due,
                    "created" => SortKey::Created,
                    "updated" => SortKey::Updated,
                    "number" => SortKey::Number,
                    f if self.fields.iter().any(|x| x.name == f) => SortKey::Field(f.to_string()),
                    other => {
                        let mut names: Vec<&str> = vec!["due", "created", "updated", "number"];
                        names.extend(self.fields.iter().map(|f| f.name.as_str()));
                        let help =
                            did_you_mean(other, names.iter().copied()).unwrap_or_else(|| {
                                "sort by `due`, `created`, `updated`, `number` or a field".into()
                            });
                        self.err(
                            codes::UNKNOWN_FIELD,
                            key.span,
                            format!("cannot sort by `{other}`"),
                        )
                        .help = Some(help);
                        return None;
                    }
                };
                let desc = match dir.as_ref().map(|d| d.text.as_str()) {
                    None | Some("asc") => false,
                    Some("desc") => true,
                    Some(other) => {
                        let d = dir.as_ref().map(|d| d.span).unwrap_or(key.span);
                        let help = did_you_mean(other, ["asc", "desc"])
                            .unwrap_or_else(|| "write `asc` or `desc`".into());
                        self.err(
                            codes::UNKNOWN_WORD,
                            d,
                            format!("unknown sort order `{other}`"),
                        )
                        .help = Some(help);
                        return None;
                    }
                };
                Some((k, desc))
            }
        };
        Some(View {
            name: name.text.clone(),
            title,
            filter,
            sort,
        })
    }

    // ------------------------------------------------------------ loops

    /// Warns about rules whose actions start each other in a circle.
    ///
    /// The graph has a node per rule and per kind of event a rule can cause
    /// (`status.changed(x)`, `field.changed(f)`, `card.assigned`,
    /// `message.sent`), so it stays linear in the size of the file; its
    /// strongly connected components that hold a rule are the loops.
    fn rule_loops(&mut self, rules: &[Rule], spans: &[Span]) {
        // Event nodes: `(what, Some(value))` is "it became this value",
        // `(what, None)` the hub every change of `what` passes through.
        let mut events: HashMap<(String, Option<String>), usize> = HashMap::new();
        let n = rules.len();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut node = |key: (String, Option<String>), edges: &mut Vec<Vec<usize>>| -> usize {
            if let Some(&i) = events.get(&key) {
                return i;
            }
            let i = edges.len();
            edges.push(Vec::new());
            let hub = key.1.is_some().then(|| key.0.clone());
            events.insert(key, i);
            if let Some(what) = hub {
                // Every specific change also counts as a change of `what`.
                let h = match events.get(&(what.clone(), None)) {
                    Some(&h) => h,
                    None => {
                        let h = edges.len();
                        edges.push(Vec::new());
                        events.insert((what, None), h);
                        h
                    }
                };
                edges[i].push(h);
            }
            i
        };
        for (i, r) in rules.iter().enumerate() {
            let required = r.condition.as_ref().map(requirements).unwrap_or_default();
            let listens: Option<(String, Vec<String>)> = match &r.trigger {
                Trigger::StatusChanged(Some(s)) => Some(("status".into(), vec![s.clone()])),
                Trigger::StatusChanged(None) => {
                    Some(("status".into(), required_of(&required, &Subject::Status)))
                }
                Trigger::FieldChanged(f) => Some((
                    format!("field {f}"),
                    required_of(&required, &Subject::Field(f.clone())),
                )),
                Trigger::CardAssigned => Some(("assigned".into(), Vec::new())),
                Trigger::MessageSent => Some(("sent".into(), Vec::new())),
                _ => None,
            };
            if let Some((what, values)) = listens {
                if values.is_empty() {
                    let e = node((what, None), &mut edges);
                    edges[e].push(i);
                } else {
                    for v in values {
                        let e = node((what.clone(), Some(v)), &mut edges);
                        edges[e].push(i);
                    }
                    // A change to a value not known at check time may match.
                    let e = node((what, Some(String::from("\u{0}unknown"))), &mut edges);
                    edges[e].push(i);
                }
            }
            for a in &r.actions {
                let cause = match a {
                    Action::Move(s) => Some(("status".to_string(), Some(s.clone()))),
                    Action::Set {
                        field,
                        value: SetValue::Value(v),
                    } => Some((format!("field {field}"), Some(v.to_string()))),
                    Action::Set { field, .. } => {
                        Some((format!("field {field}"), Some(String::from("\u{0}unknown"))))
                    }
                    Action::Assign { .. } => Some(("assigned".to_string(), None)),
                    Action::Reply(_) | Action::ReplyTemplate { .. } => {
                        Some(("sent".to_string(), None))
                    }
                    _ => None,
                };
                if let Some(key) = cause {
                    let e = node(key, &mut edges);
                    edges[i].push(e);
                }
            }
        }
        for component in strongly_connected(&edges) {
            let mut cycle: Vec<usize> = component.into_iter().filter(|&v| v < n).collect();
            if cycle.is_empty() {
                continue;
            }
            cycle.sort_unstable();
            let names: Vec<String> = cycle
                .iter()
                .take(5)
                .map(|&i| format!("`{}`", rules[i].name))
                .collect();
            let more = if cycle.len() > 5 {
                format!(" (and {} more)", cycle.len() - 5)
            } else {
                String::new()
            };
            let msg = if cycle.len() == 1 {
                format!("rule {} can trigger itself again and again", names[0])
            } else {
                format!(
                    "rules {}{more} can trigger each other forever",
                    names.join(" and ")
                )
            };
            let mut d = Diagnostic::warning(codes::RULE_LOOP, spans[cycle[0]], msg).with_help(
                "add a `when` that stops the chain; the engine cuts such chains off after 8 steps",
            );
            for &i in cycle.iter().skip(1).take(4) {
                d = d.with_note(spans[i], format!("rule `{}`", rules[i].name));
            }
            self.push(d);
        }
    }
}

/// What a condition requires, when it says so plainly: the values a status
/// or field must have (`status = a`, `priority in [high, normal]`) in its
/// top-level `and`s.
fn requirements(c: &Condition) -> Vec<(Subject, Vec<String>)> {
    match c {
        Condition::And(a, b) => {
            let mut out = requirements(a);
            out.extend(requirements(b));
            out
        }
        Condition::Compare {
            subject: subject @ (Subject::Status | Subject::Field(_)),
            op: Op::Eq,
            value: Operand::Value(v),
        } => {
            vec![(subject.clone(), vec![v.to_string()])]
        }
        Condition::Compare {
            subject: subject @ (Subject::Status | Subject::Field(_)),
            op: Op::In,
            value: Operand::List(vs),
        } => {
            vec![(
                subject.clone(),
                vs.iter().map(ToString::to_string).collect(),
            )]
        }
        _ => Vec::new(),
    }
}

fn required_of(required: &[(Subject, Vec<String>)], subject: &Subject) -> Vec<String> {
    required
        .iter()
        .find(|(s, _)| s == subject)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Strongly connected components with more than one node, or with a node
/// that points at itself (Tarjan's algorithm, without recursion).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let (mut index, mut low) = (vec![usize::MAX; n], vec![0usize; n]);
    let (mut on_stack, mut stack) = (vec![false; n], Vec::new());
    let mut next = 0;
    let mut out = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its edge list)
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if let Some(&w) = edges[v].get(*pos) {
                *pos += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 || edges[v].contains(&v) {
                    out.push(component);
                }
            }
        }
    }
    out
}

/// What the flow allows, for checking `move` in rules.
struct MoveCtx {
    flows: Option<BTreeMap<String, Vec<String>>>,
    statuses: Vec<Status>,
}

impl MoveCtx {
    fn allows(&self, from: &str, to: &str) -> bool {
        if self.statuses.iter().any(|s| s.name == from && s.is_final) {
            return false;
        }
        match &self.flows {
            None => true,
            Some(f) => f.get(from).is_some_and(|t| t.iter().any(|x| x == to)),
        }
    }

    fn moves_from(&self, from: &str) -> Vec<String> {
        match &self.flows {
            None => self
                .statuses
                .iter()
                .map(|s| s.name.clone())
                .filter(|s| s != from)
                .collect(),
            Some(f) => f.get(from).cloned().unwrap_or_default(),
        }
    }

    /// The statuses a card can be in when a rule starts, when they can be
    /// known from the trigger or the condition.
    fn sources_of(&self, t: &Trigger, when: Option<&Cond>) -> Option<Vec<String>> {
        if let Some(s) = when.and_then(|w| self.status_conjuncts(w)) {
            return Some(s);
        }
        match t {
            Trigger::StatusChanged(Some(s)) => Some(vec![s.clone()]),
            Trigger::CardCreated => self
                .statuses
                .iter()
                .find(|s| s.initial)
                .map(|s| vec![s.name.clone()]),
            _ => None,
        }
    }

    /// `status = x` or `status in [..]` as a required part of a condition.
    fn status_conjuncts(&self, c: &Cond) -> Option<Vec<String>> {
        match c {
            Cond::And(a, b, _) => self
                .status_conjuncts(a)
                .or_else(|| self.status_conjuncts(b)),
            Cond::Paren(a, _) => self.status_conjuncts(a),
            Cond::Compare { lhs, op, rhs } if lhs.text == "status" || lhs.text == "card.status" => {
                let known = |s: &str| self.statuses.iter().any(|x| x.name == s);
                match (op.text.as_str(), &rhs.kind) {
                    ("=", AtomKind::Word(s)) if known(s) => Some(vec![s.clone()]),
                    ("in", AtomKind::List(items)) => {
                        let v: Vec<String> = items
                            .iter()
                            .filter_map(|i| i.text())
                            .filter(|s| known(s))
                            .map(str::to_string)
                            .collect();
                        (v.len() == items.len()).then_some(v)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

fn ty_of_field(t: &FieldType) -> Ty {
    match t {
        FieldType::Text => Ty::Text,
        FieldType::Number => Ty::Number,
        FieldType::Date => Ty::Date,
        FieldType::Bool => Ty::Bool,
        FieldType::Agent => Ty::Agent,
        FieldType::Choice(v) => Ty::Words("the field", Rc::from(v.as_slice())),
    }
}

fn ty_name(t: &Ty) -> String {
    match t {
        Ty::Text => "text".into(),
        Ty::Number => "a number".into(),
        Ty::Date => "a date".into(),
        Ty::Bool => "yes or no".into(),
        Ty::Agent => "an agent".into(),
        Ty::Words("the field", _) => "a choice field".into(),
        Ty::Words("the statuses", _) => "a status".into(),
        Ty::Words("the teams", _) => "a team".into(),
        Ty::Words(..) => "one of a list of names".into(),
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none yet)".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where a name used inside `{{ }}` or `{% %}` is in a text (not a plain
/// word of the text that happens to be the same).
fn find_in_code(src: &str, name: &str) -> Option<(usize, usize)> {
    let mut open = false;
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{{") || bytes[i..].starts_with(b"{%") {
            open = true;
            i += 2;
            continue;
        }
        if bytes[i..].starts_with(b"}}") || bytes[i..].starts_with(b"%}") {
            open = false;
            i += 2;
            continue;
        }
        if open && bytes[i..].starts_with(name.as_bytes()) {
            let word = |b: Option<&u8>| b.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
            if !word(i.checked_sub(1).and_then(|j| bytes.get(j)))
                && !word(bytes.get(i + name.len()))
            {
                return Some((i, i + name.len()));
            }
        }
        i += 1;
    }
    None
}

/// `workflows` + `scripts/vip.rhai` → `workflows/scripts/vip.rhai`, with `..` resolved.
pub fn join_path(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = if rel.starts_with('/') || dir.is_empty() {
        Vec::new()
    } else {
        dir.split('/').collect()
    };
    if rel.starts_with('/') {
        parts.push("");
    }
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| !l.is_empty() && *l != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn offset_of(file: &crate::source::SourceFile, line: Option<usize>, col: Option<usize>) -> usize {
    let line = line.unwrap_or(1).max(1);
    let mut offset = 0;
    for (i, l) in file.text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = col.unwrap_or(1).max(1) - 1;
            let within: usize = l.chars().take(col).map(char::len_utf8).sum();
            return (offset + within).min(file.text.len().saturating_sub(1));
        }
        offset += l.len();
    }
    file.text.len().saturating_sub(1)
}

#[allow(dead_code)]
fn suggest(word: &str, names: &[String]) -> Option<String> {
    closest(word, names.iter().map(String::as_str)).map(str::to_string)
}

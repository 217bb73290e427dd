//! Text to syntax tree, with errors said in words.
//!
//! pest stops at the first failure, so a file is parsed in pieces: first each
//! top-level item on its own, and inside an item that fails, each statement on
//! its own. One typo costs one statement, and every other mistake in the file
//! is still found.

use crate::ast::*;
use crate::codes;
use crate::diagnostic::{closest, Diagnostic};
use crate::source::{FileId, Span};
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;
use std::sync::OnceLock;

/// The parser generated from `grammar/workflow.pest`.
pub mod grammar {
    #![allow(missing_docs)]
    /// The pest parser of `.flow` files.
    #[derive(pest_derive::Parser)]
    #[grammar = "../../../grammar/workflow.pest"]
    pub struct FlowParser;
}
use grammar::{FlowParser, Rule};

/// Words that start a statement in a pipe body.
pub const STATEMENT_KEYWORDS: &[&str] = &[
    "number", "timezone", "hours", "holidays", "field", "status", "flow", "team", "sla", "route",
    "rule", "on", "every", "view",
];
/// Words that start an action in a rule.
pub const ACTION_KEYWORDS: &[&str] = &[
    "assign", "unassign", "set", "move", "reply", "note", "notify", "webhook",
];
/// Words that continue a statement on a new line rather than start one.
const CONTINUATION_WORDS: &[&str] = &[
    "and", "or", "not", "when", "business", "warn", "id", "shown", "in", "contains", "within",
    "else", "by", "from", "language", "params", "where", "sort",
];

/// Parses one file. Always returns a tree: what could not be read is left
/// out of it and reported.
pub fn parse(file: FileId, text: &str) -> (File, Vec<Diagnostic>) {
    set_call_limit(text);
    let mut out = File::default();
    let mut diags = Vec::new();
    if let Some(d) = too_deep(file, text) {
        // Parsing is recursive: refuse before it can exhaust the stack.
        diags.push(d);
        return (out, diags);
    }
    if let Ok(mut pairs) = FlowParser::parse(Rule::file, text) {
        if let Some(p) = pairs.next() {
            let b = Builder { file, base: 0 };
            out.items = p
                .into_inner()
                .filter(|p| p.as_rule() != Rule::EOI)
                .map(|p| b.item(p))
                .collect();
            return (out, diags);
        }
    }
    for (start, end) in top_level_chunks(text) {
        let chunk = &text[start..end];
        let b = Builder { file, base: start };
        match FlowParser::parse(Rule::file, chunk) {
            Ok(mut pairs) => {
                if let Some(p) = pairs.next() {
                    out.items.extend(
                        p.into_inner()
                            .filter(|p| p.as_rule() != Rule::EOI)
                            .map(|p| b.item(p)),
                    );
                }
            }
            Err(e) => {
                if let Some(item) = recover_item(&b, chunk, &mut diags) {
                    out.items.push(item);
                } else {
                    diags.push(b.syntax_error(chunk, e));
                }
            }
        }
    }
    (out, diags)
}

/// Only runs the grammar over the text (no tree, no recovery): the
/// baseline the benchmark compares parsing and checking against.
pub fn recognise(text: &str) -> bool {
    set_call_limit(text);
    FlowParser::parse(Rule::file, text).is_ok()
}

/// Bounds the work on hostile input (exponential backtracking) while leaving
/// room for big files: the bound grows with the text, so it stays linear.
fn set_call_limit(text: &str) {
    pest::set_call_limit(std::num::NonZeroUsize::new(1_000_000 + 1_000 * text.len()));
}

/// How deep brackets may nest, and how many `not`s may follow each other.
pub const MAX_NESTING: usize = 64;
/// How many `and`/`or` one statement may hold.
pub const MAX_CONDITION_PARTS: usize = 512;

/// Reports text nested deeper than any workflow needs, which would otherwise
/// make the recursive parser and checker run out of stack.
fn too_deep(file: FileId, text: &str) -> Option<Diagnostic> {
    let bytes = text.as_bytes();
    let (mut depth, mut nots, mut parts) = (0usize, 0usize, 0usize);
    let mut word_start = true;
    let mut code = CodeBytes::new(text).peekable();
    while let Some((i, c)) = code.next() {
        let at = |what: &str| {
            Some(
                Diagnostic::error(
                    codes::SYNTAX,
                    Span::new(file, i, i + 1),
                    format!("this is nested too deeply: more than {what}"),
                )
                .with_help("split the condition or the list into simpler parts"),
            )
        };
        match c {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return at(&format!("{MAX_NESTING} brackets inside each other"));
                }
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if c == b'}' {
                    parts = 0;
                }
            }
            b'!' => {
                nots += 1;
                if nots > MAX_NESTING {
                    return at(&format!("{MAX_NESTING} `not`s in a row"));
                }
            }
            b'&' | b'|' => {
                parts += 1;
                if parts > 2 * MAX_CONDITION_PARTS {
                    return at(&format!(
                        "{MAX_CONDITION_PARTS} `and`/`or` in one statement"
                    ));
                }
            }
            _ if word_start && c.is_ascii_alphabetic() => {
                let rest = &bytes[i..];
                let word_len = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                match &rest[..word_len] {
                    b"not" => {
                        nots += 1;
                        if nots > MAX_NESTING {
                            return at(&format!("{MAX_NESTING} `not`s in a row"));
                        }
                    }
                    b"and" | b"or" => {
                        parts += 1;
                        nots = 0;
                        if parts > MAX_CONDITION_PARTS {
                            return at(&format!(
                                "{MAX_CONDITION_PARTS} `and`/`or` in one statement"
                            ));
                        }
                    }
                    _ => nots = 0,
                }
                while code.next_if(|&(j, _)| j < i + word_len).is_some() {}
                word_start = false;
                continue;
            }
            _ => {}
        }
        word_start = !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.');
    }
    None
}

/// The bytes of a text that are code: comments are left out, and each
/// quoted string is one `"`. What the parser's recovery and the nesting
/// guard look at, so that a `{` in a reply text or a comment is not a block.
struct CodeBytes<'a> {
    bytes: &'a [u8],
    i: usize,
}

impl<'a> CodeBytes<'a> {
    fn new(text: &'a str) -> Self {
        CodeBytes {
            bytes: text.as_bytes(),
            i: 0,
        }
    }
}

impl Iterator for CodeBytes<'_> {
    type Item = (usize, u8);

    fn next(&mut self) -> Option<(usize, u8)> {
        let bytes = self.bytes;
        loop {
            let i = self.i;
            let c = *bytes.get(i)?;
            match c {
                b'#' => {
                    while self.i < bytes.len() && bytes[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                b'"' => {
                    self.i += 1;
                    while self.i < bytes.len() && bytes[self.i] != b'"' {
                        self.i += usize::from(bytes[self.i] == b'\\') + 1;
                    }
                    self.i += 1;
                    return Some((i, c));
                }
                _ => {
                    self.i += 1;
                    return Some((i, c));
                }
            }
        }
    }
}

/// Byte ranges of the top-level items: each starts on a line that begins,
/// at column 0, with `pipe` or `template`.
fn top_level_chunks(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if offset > 0 && (starts_with_word(line, "pipe") || starts_with_word(line, "template")) {
            starts.push(offset);
        }
        offset += line.len();
    }
    let mut chunks: Vec<(usize, usize)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    chunks.push((*starts.last().unwrap_or(&0), text.len()));
    chunks
}

fn starts_with_word(line: &str, word: &str) -> bool {
    line.strip_prefix(word)
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_whitespace()) || rest.is_empty())
}

/// Scans code the way the grammar sees it: strings and comments skipped,
/// brackets counted. Calls `at_line_start(offset, depth)` at the first
/// character of each line that is not blank.
fn scan_depths(text: &str, mut visit: impl FnMut(usize, i32, &str) -> bool) -> Option<usize> {
    let (mut depth, mut line_start) = (0i32, true);
    for (i, c) in CodeBytes::new(text) {
        if line_start && !c.is_ascii_whitespace() {
            line_start = false;
            if !visit(i, depth, &text[i..]) {
                return Some(i);
            }
        }
        match c {
            b'\n' => line_start = true,
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => {
                depth -= 1;
                if depth < 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses a broken item statement by statement.
fn recover_item(b: &Builder, chunk: &str, diags: &mut Vec<Diagnostic>) -> Option<Item> {
    let is_pipe = starts_with_word(chunk.trim_start(), "pipe");
    let is_template = starts_with_word(chunk.trim_start(), "template");
    if !is_pipe && !is_template {
        return None;
    }
    // The head ends at the first `{` outside strings, comments and brackets.
    let mut depth = 0i32;
    let head_end = CodeBytes::new(chunk).find_map(|(i, c)| {
        match c {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth -= 1,
            b'{' if depth == 0 => return Some(i + 1),
            _ => {}
        }
        None
    });
    let head_end = head_end?;
    let head_rule = if is_pipe {
        Rule::pipe_head
    } else {
        Rule::template_head
    };
    let head = match FlowParser::parse(head_rule, &chunk[..head_end]) {
        Ok(mut p) => p.next()?,
        Err(_) => return None,
    };
    let body_text = &chunk[head_end..];
    // Statement starts at depth 0 of the body; the body ends at its `}`.
    let mut starts = Vec::new();
    let close = scan_depths(body_text, |i, depth, rest| {
        if depth == 0 {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty()
                && rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && !CONTINUATION_WORDS.contains(&word.as_str())
            {
                starts.push(i);
            }
        }
        true
    });
    let body_end = match close {
        Some(c) => c,
        None => {
            let at = b.base + chunk.trim_end().len();
            diags.push(
                Diagnostic::error(
                    codes::SYNTAX,
                    Span::new(b.file, b.base, b.base + head_end).to(Span::new(b.file, at, at)),
                    "this block is never closed: a `}` is missing",
                )
                .with_help("every `{` needs a matching `}`"),
            );
            body_text.len()
        }
    };
    if close.is_some() {
        let rest = body_text[body_end + 1..].trim();
        if !rest.is_empty() && !rest.starts_with('#') {
            let at = b.base
                + head_end
                + body_end
                + 1
                + body_text[body_end + 1..].find(rest).unwrap_or(0);
            diags.push(Diagnostic::error(
                codes::SYNTAX,
                Span::new(b.file, at, at + rest.len().min(20)),
                "unexpected text after the end of the block; a `}` closed it earlier than meant?",
            ));
        }
    }
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut body = Vec::new();
    let mut broken = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(body_end).min(body_end);
        if s >= e {
            continue;
        }
        let piece = &body_text[s..e];
        if piece.trim().is_empty() || piece.trim_start().starts_with('#') && only_comments(piece) {
            continue;
        }
        let sb = Builder {
            file: b.file,
            base: b.base + head_end + s,
        };
        match FlowParser::parse(Rule::stmt_only, piece) {
            Ok(mut p) => {
                if let Some(stmt) = p.next().and_then(|p| p.into_inner().next()) {
                    body.push(sb.stmt(stmt));
                }
            }
            Err(e) => {
                diags.push(sb.syntax_error(piece, e));
                let mut words = piece.split_whitespace();
                if let (Some("field" | "status" | "team" | "route" | "view" | "rule"), Some(name)) =
                    (words.next(), words.next())
                {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    broken.push(name);
                }
            }
        }
    }
    let span = Span::new(b.file, b.base, b.base + chunk.trim_end().len());
    Some(b.item_from_head(is_template, head.into_inner(), body, broken, span))
}

fn only_comments(piece: &str) -> bool {
    piece
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

fn pratt() -> &'static PrattParser<Rule> {
    static P: OnceLock<PrattParser<Rule>> = OnceLock::new();
    P.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::kw_or, Assoc::Left) | Op::infix(Rule::bad_or, Assoc::Left))
            .op(Op::infix(Rule::kw_and, Assoc::Left) | Op::infix(Rule::bad_and, Assoc::Left))
            .op(Op::prefix(Rule::kw_not) | Op::prefix(Rule::bad_not))
    })
}

/// Turns pest pairs into the tree, shifting spans by `base`.
struct Builder {
    file: FileId,
    base: usize,
}

impl Builder {
    /// The span of a pair, without the spaces and comments that pest
    /// counts into a rule ending in an optional part.
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        let end = match p.as_rule() {
            // Atomic tokens end where they end (and may hold `#`).
            Rule::script_code | Rule::string | Rule::word | Rule::free_word => s.end(),
            _ => s.start() + code_len(s.as_str()),
        };
        Span::new(self.file, self.base + s.start(), self.base + end)
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            text: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    /// A whole pipe or template.
    fn item(&self, p: Pair<Rule>) -> Item {
        let span = self.span(&p);
        let is_template = p.as_rule() == Rule::template_decl;
        let mut body = Vec::new();
        let mut head = Vec::new();
        for c in p.into_inner() {
            if c.as_rule() == Rule::body {
                body = c
                    .into_inner()
                    .filter(|s| !is_punct(s.as_rule()))
                    .map(|s| self.stmt(s))
                    .collect();
            } else {
                head.push(c);
            }
        }
        self.item_from_head(is_template, head, body, Vec::new(), span)
    }

    /// An item from the pairs of its head (name, title, parameters, `from`)
    /// and its statements, parsed together or (in recovery) one by one.
    fn item_from_head<'i>(
        &self,
        is_template: bool,
        head: impl IntoIterator<Item = Pair<'i, Rule>>,
        body: Vec<Stmt>,
        broken: Vec<String>,
        span: Span,
    ) -> Item {
        let mut name = None;
        let mut title = None;
        let mut from = None;
        let mut params = Vec::new();
        for c in head {
            match c.as_rule() {
                Rule::name => name = Some(self.ident(c)),
                Rule::string => title = Some(self.atom_of(c)),
                Rule::from_clause => from = Some(self.template_use(c)),
                Rule::params => params = self.params(c),
                _ => {}
            }
        }
        let name = name.unwrap_or_else(|| Ident {
            text: String::new(),
            span,
        });
        if is_template {
            Item::Template(Template {
                name,
                params,
                from,
                body,
                broken,
                span,
            })
        } else {
            Item::Pipe(Pipe {
                name,
                title,
                from,
                body,
                broken,
                span,
            })
        }
    }

    fn params(&self, p: Pair<Rule>) -> Vec<Param> {
        p.into_inner()
            .filter(|c| c.as_rule() == Rule::param)
            .map(|c| {
                let mut it = c.into_inner().filter(|x| !is_punct(x.as_rule()));
                let name = it
                    .next()
                    .map(|n| self.ident(n))
                    .unwrap_or_else(|| self.empty_ident());
                let default = it.next().map(|a| self.atom(a));
                Param { name, default }
            })
            .collect()
    }

    fn empty_ident(&self) -> Ident {
        Ident {
            text: String::new(),
            span: Span::new(self.file, self.base, self.base),
        }
    }

    fn template_use(&self, p: Pair<Rule>) -> FromClause {
        let span = self.span(&p);
        let mut template = None;
        let mut args = Vec::new();
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::name => template = Some(self.ident(c)),
                Rule::arg => {
                    let mut it = c.into_inner().filter(|x| !is_punct(x.as_rule()));
                    if let (Some(n), Some(v)) = (it.next(), it.next()) {
                        args.push((self.ident(n), self.atom(v)));
                    }
                }
                _ => {}
            }
        }
        FromClause {
            template: template.unwrap_or_else(|| self.empty_ident()),
            args,
            span,
        }
    }

    /// An `atom` pair (or one of its inner kinds) to an [`Atom`].
    fn atom(&self, p: Pair<Rule>) -> Atom {
        if matches!(p.as_rule(), Rule::atom | Rule::elem) {
            if let Some(inner) = p.into_inner().next() {
                return self.atom_of(inner);
            }
            return Atom {
                kind: AtomKind::Word(String::new()),
                span: Span::default(),
            };
        }
        self.atom_of(p)
    }

    fn atom_of(&self, p: Pair<Rule>) -> Atom {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::string => AtomKind::Str(unescape(p.as_str())),
            Rule::list => AtomKind::List(
                p.into_inner()
                    .filter(|c| c.as_rule() == Rule::elem)
                    .map(|c| self.atom(c))
                    .collect(),
            ),
            Rule::param_ref => AtomKind::Param(p.as_str()[1..].to_string()),
            _ => AtomKind::Word(p.as_str().to_string()),
        };
        Atom { kind, span }
    }

    fn stmt(&self, p: Pair<Rule>) -> Stmt {
        let span = self.span(&p);
        let rule = p.as_rule();
        let inner: Vec<Pair<Rule>> = p.into_inner().collect();
        let kind = match rule {
            Rule::number_stmt => {
                let atoms: Vec<Atom> = atoms_in(self, &inner);
                let mut it = atoms.into_iter();
                StmtKind::Number {
                    number: it.next().unwrap_or_else(|| self.blank(span)),
                    id: it.next(),
                }
            }
            Rule::timezone_stmt => StmtKind::Timezone(self.first_atom(&inner, span)),
            Rule::hours_stmt => StmtKind::Hours(self.first_atom(&inner, span)),
            Rule::holidays_stmt => StmtKind::Holidays(atoms_in(self, &inner)),
            Rule::field_stmt => {
                let mut name = None;
                let mut ty = None;
                let mut choices = None;
                let mut default = None;
                let mut shown = false;
                for c in inner {
                    match c.as_rule() {
                        Rule::name => name = Some(self.ident(c)),
                        Rule::field_type => {
                            let mut it = c.into_inner();
                            ty = it.next().map(|n| self.ident(n));
                            let rest: Vec<Pair<Rule>> = it.collect();
                            if !rest.is_empty() {
                                choices = Some(atoms_in(self, &rest));
                            }
                        }
                        Rule::elem => default = Some(self.atom(c)),
                        Rule::kw_shown => shown = true,
                        _ => {}
                    }
                }
                StmtKind::Field {
                    name: name.unwrap_or_else(|| self.empty_ident()),
                    ty: ty.unwrap_or_else(|| self.empty_ident()),
                    choices,
                    default,
                    shown,
                }
            }
            Rule::status_stmt => {
                let mut it = inner
                    .into_iter()
                    .filter(|c| matches!(c.as_rule(), Rule::name | Rule::modifier));
                let name = it
                    .next()
                    .map(|n| self.ident(n))
                    .unwrap_or_else(|| self.empty_ident());
                StmtKind::Status {
                    name,
                    modifiers: it.map(|m| self.ident(m)).collect(),
                }
            }
            Rule::flow_stmt => {
                let mut it = inner.into_iter().filter(|c| c.as_rule() == Rule::name);
                let from = it
                    .next()
                    .map(|n| self.ident(n))
                    .unwrap_or_else(|| self.empty_ident());
                StmtKind::Flow {
                    from,
                    to: it.map(|n| self.ident(n)).collect(),
                }
            }
            Rule::team_stmt => {
                let name = self.first_name(&inner);
                StmtKind::Team {
                    name,
                    members: atoms_in(self, &inner),
                }
            }
            Rule::sla_stmt => {
                let kind = self.first_name(&inner);
                let mut window = None;
                let mut business = false;
                let mut warn = None;
                let mut when = None;
                let mut after_warn = false;
                for c in inner {
                    match c.as_rule() {
                        Rule::atom if after_warn => warn = Some(self.atom(c)),
                        Rule::atom => window = Some(self.atom(c)),
                        Rule::kw_business => business = true,
                        Rule::kw_warn => after_warn = true,
                        Rule::condition => when = Some(self.condition(c)),
                        _ => {}
                    }
                }
                StmtKind::Sla {
                    kind,
                    window: window.unwrap_or_else(|| self.blank(span)),
                    business,
                    warn,
                    when,
                }
            }
            Rule::route_stmt => {
                let mut it = inner
                    .iter()
                    .filter(|c| matches!(c.as_rule(), Rule::name | Rule::path));
                let name = it
                    .next()
                    .map(|n| self.ident(n.clone()))
                    .unwrap_or_else(|| self.empty_ident());
                let by = it
                    .next()
                    .map(|n| self.ident(n.clone()))
                    .unwrap_or_else(|| self.empty_ident());
                let entries = inner
                    .into_iter()
                    .filter(|c| matches!(c.as_rule(), Rule::route_entry | Rule::route_else))
                    .map(|c| {
                        let span = self.span(&c);
                        let is_else = c.as_rule() == Rule::route_else;
                        let mut atoms = atoms_in(self, &c.into_inner().collect::<Vec<_>>());
                        let target = atoms.pop().unwrap_or_else(|| self.blank(span));
                        RouteEntry {
                            keys: atoms,
                            target,
                            is_else,
                            span,
                        }
                    })
                    .collect();
                StmtKind::Route { name, by, entries }
            }
            Rule::rule_stmt => {
                let mut name = None;
                let mut trigger = None;
                let mut when = None;
                let mut actions = Vec::new();
                for c in inner {
                    match c.as_rule() {
                        Rule::rule_name => {
                            name = c
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::name)
                                .map(|n| self.ident(n))
                        }
                        Rule::trigger => trigger = Some(self.trigger(c)),
                        Rule::condition => when = Some(self.condition(c)),
                        Rule::actions => actions = self.actions(c),
                        _ => {}
                    }
                }
                let trigger = trigger.unwrap_or_else(|| Trigger {
                    name: self.empty_ident(),
                    arg: None,
                    duration: None,
                    span,
                });
                StmtKind::Rule {
                    name,
                    trigger,
                    when,
                    actions,
                }
            }
            Rule::every_stmt => {
                let mut cron = None;
                let mut when = None;
                let mut actions = Vec::new();
                for c in inner {
                    match c.as_rule() {
                        Rule::atom => cron = Some(self.atom(c)),
                        Rule::condition => when = Some(self.condition(c)),
                        Rule::actions => actions = self.actions(c),
                        _ => {}
                    }
                }
                StmtKind::Every {
                    cron: cron.unwrap_or_else(|| self.blank(span)),
                    when,
                    actions,
                }
            }
            Rule::view_stmt => {
                let name = self.first_name(&inner);
                let mut title = None;
                let mut filter = None;
                let mut sort = None;
                for c in inner {
                    match c.as_rule() {
                        Rule::string => title = Some(self.atom_of(c)),
                        Rule::view_where => {
                            filter = c
                                .into_inner()
                                .find(|x| x.as_rule() == Rule::condition)
                                .map(|x| self.condition(x))
                        }
                        Rule::view_sort => {
                            let mut key = None;
                            let mut dir = None;
                            for x in c.into_inner() {
                                match x.as_rule() {
                                    Rule::path => key = Some(self.ident(x)),
                                    Rule::modifier => dir = Some(self.ident(x)),
                                    _ => {}
                                }
                            }
                            sort = key.map(|k| (k, dir));
                        }
                        _ => {}
                    }
                }
                StmtKind::View {
                    name,
                    title,
                    filter,
                    sort,
                }
            }
            _ => StmtKind::Holidays(Vec::new()),
        };
        Stmt { kind, span }
    }

    fn blank(&self, span: Span) -> Atom {
        Atom {
            kind: AtomKind::Word(String::new()),
            span: Span {
                start: span.end,
                ..span
            },
        }
    }

    fn first_atom(&self, inner: &[Pair<Rule>], span: Span) -> Atom {
        inner
            .iter()
            .find(|c| matches!(c.as_rule(), Rule::atom | Rule::elem))
            .map(|c| self.atom(c.clone()))
            .unwrap_or_else(|| self.blank(span))
    }

    fn first_name(&self, inner: &[Pair<Rule>]) -> Ident {
        inner
            .iter()
            .find(|c| c.as_rule() == Rule::name)
            .map(|c| self.ident(c.clone()))
            .unwrap_or_else(|| self.empty_ident())
    }

    fn trigger(&self, p: Pair<Rule>) -> Trigger {
        let span = self.span(&p);
        let mut name = None;
        let mut arg = None;
        let mut duration = None;
        let mut in_parens = false;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::path => name = Some(self.ident(c)),
                Rule::lparen => in_parens = true,
                Rule::rparen => in_parens = false,
                Rule::elem if in_parens => arg = Some(self.atom(c)),
                Rule::atom => duration = Some(self.atom(c)),
                _ => {}
            }
        }
        Trigger {
            name: name.unwrap_or_else(|| self.empty_ident()),
            arg,
            duration,
            span,
        }
    }

    fn actions(&self, p: Pair<Rule>) -> Vec<Action> {
        p.into_inner()
            .filter(|c| !is_punct(c.as_rule()))
            .map(|c| self.action(c))
            .collect()
    }

    fn action(&self, p: Pair<Rule>) -> Action {
        let span = self.span(&p);
        let rule = p.as_rule();
        let inner: Vec<Pair<Rule>> = p.into_inner().collect();
        let kind = match rule {
            Rule::assign_act => ActionKind::Assign {
                target: self.first_atom(&inner, span),
                modes: inner
                    .iter()
                    .filter(|c| c.as_rule() == Rule::modifier)
                    .map(|c| self.ident(c.clone()))
                    .collect(),
            },
            Rule::unassign_act => ActionKind::Unassign,
            Rule::set_act => {
                let field = inner
                    .iter()
                    .find(|c| c.as_rule() == Rule::path)
                    .map(|c| self.ident(c.clone()))
                    .unwrap_or_else(|| self.empty_ident());
                let value = inner
                    .iter()
                    .find(|c| c.as_rule() == Rule::value_expr)
                    .and_then(|v| v.clone().into_inner().next())
                    .map(|v| match v.as_rule() {
                        Rule::script_file => Value::ScriptFile(self.script_file_atom(v)),
                        Rule::script_inline => Value::ScriptInline(self.code(v)),
                        _ => Value::Atom(self.atom(v)),
                    })
                    .unwrap_or_else(|| Value::Atom(self.blank(span)));
                ActionKind::Set { field, value }
            }
            Rule::move_act => ActionKind::Move(self.first_atom(&inner, span)),
            Rule::reply_act => ActionKind::Reply(self.first_atom(&inner, span)),
            Rule::reply_template_act => {
                let mut name = None;
                let mut language = None;
                let mut params = None;
                let mut last_kw = Rule::kw_template;
                for c in inner {
                    match c.as_rule() {
                        Rule::kw_language | Rule::kw_params | Rule::kw_template => {
                            last_kw = c.as_rule()
                        }
                        Rule::atom => match last_kw {
                            Rule::kw_language => language = Some(self.atom(c)),
                            Rule::kw_params => params = Some(self.atom(c)),
                            _ => name = Some(self.atom(c)),
                        },
                        _ => {}
                    }
                }
                ActionKind::ReplyTemplate {
                    name: name.unwrap_or_else(|| self.blank(span)),
                    language,
                    params,
                }
            }
            Rule::note_act => ActionKind::Note(self.first_atom(&inner, span)),
            Rule::notify_act => {
                let kind = self.first_name(&inner);
                let to = inner
                    .iter()
                    .find(|c| c.as_rule() == Rule::notify_to)
                    .and_then(|c| c.clone().into_inner().next())
                    .map(|a| self.atom(a));
                let text = inner
                    .iter()
                    .find(|c| c.as_rule() == Rule::string)
                    .map(|c| self.atom_of(c.clone()))
                    .unwrap_or_else(|| self.blank(span));
                ActionKind::Notify { kind, to, text }
            }
            Rule::webhook_act => ActionKind::Webhook(self.first_atom(&inner, span)),
            _ => ActionKind::Unassign,
        };
        Action { kind, span }
    }

    fn script_file_atom(&self, p: Pair<Rule>) -> Atom {
        let span = self.span(&p);
        p.into_inner()
            .find(|c| c.as_rule() == Rule::atom)
            .map(|a| self.atom(a))
            .unwrap_or_else(|| self.blank(span))
    }

    fn code(&self, p: Pair<Rule>) -> Code {
        let code = p.into_inner().find(|c| c.as_rule() == Rule::script_code);
        match code {
            Some(c) => {
                let s = c.as_str();
                Code {
                    text: s[1..s.len() - 1].to_string(),
                    span: self.span(&c),
                }
            }
            None => Code {
                text: String::new(),
                span: Span::default(),
            },
        }
    }

    fn condition(&self, p: Pair<Rule>) -> Cond {
        pratt()
            .map_primary(|x| self.primary(x))
            .map_prefix(|op, rhs| {
                let s = self.span(&op).to(rhs.span());
                if op.as_rule() == Rule::bad_not {
                    let bad = Cond::BadOperator(self.ident(op));
                    Cond::And(Box::new(bad), Box::new(rhs), s)
                } else {
                    Cond::Not(Box::new(rhs), s)
                }
            })
            .map_infix(|lhs, op, rhs| {
                let s = lhs.span().to(rhs.span());
                match op.as_rule() {
                    Rule::kw_and => Cond::And(Box::new(lhs), Box::new(rhs), s),
                    Rule::kw_or => Cond::Or(Box::new(lhs), Box::new(rhs), s),
                    _ => {
                        let bad = Cond::BadOperator(self.ident(op));
                        Cond::And(
                            Box::new(lhs),
                            Box::new(Cond::And(Box::new(bad), Box::new(rhs), s)),
                            s,
                        )
                    }
                }
            })
            .parse(p.into_inner())
    }

    fn primary(&self, p: Pair<Rule>) -> Cond {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::paren => {
                let inner = p.into_inner().find(|c| c.as_rule() == Rule::condition);
                let c = inner
                    .map(|c| self.condition(c))
                    .unwrap_or(Cond::WithinHours(span));
                Cond::Paren(Box::new(c), span)
            }
            Rule::within_hours => Cond::WithinHours(span),
            Rule::script_file => Cond::ScriptFile(self.script_file_atom(p)),
            Rule::script_inline => Cond::ScriptInline(self.code(p)),
            Rule::comparison => {
                let mut lhs = None;
                let mut op = None;
                let mut rhs = None;
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::path => lhs = Some(self.ident(c)),
                        Rule::cmp_op => {
                            let s = self.span(&c);
                            // Built from the tokens: a comment between `not`
                            // and `in` is not part of the operator.
                            let text = match c.clone().into_inner().next().map(|x| x.as_rule()) {
                                Some(Rule::not_in) => "not in".to_string(),
                                _ => c.as_str().trim().to_string(),
                            };
                            op = Some(Ident { text, span: s })
                        }
                        Rule::elem => rhs = Some(self.atom(c)),
                        _ => {}
                    }
                }
                Cond::Compare {
                    lhs: lhs.unwrap_or_else(|| self.empty_ident()),
                    op: op.unwrap_or_else(|| self.empty_ident()),
                    rhs: rhs.unwrap_or_else(|| self.blank(span)),
                }
            }
            _ => Cond::WithinHours(span),
        }
    }

    /// A pest failure as one sentence in words.
    fn syntax_error(&self, text: &str, e: pest::error::Error<Rule>) -> Diagnostic {
        let pos = match e.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((s, _)) => s,
        };
        let found = found_at(text, pos);
        let prev = previous_token(text, pos);
        let expected = match &e.variant {
            ErrorVariant::ParsingError { positives, .. } => {
                describe_expected(positives, prev.as_deref())
            }
            ErrorVariant::CustomError { message } => message.clone(),
        };
        let message = match &prev {
            Some(p) => format!(
                "expected {expected} after `{p}`, found {}",
                found.describe()
            ),
            None => format!("expected {expected}, found {}", found.describe()),
        };
        let span = Span::new(
            self.file,
            self.base + pos,
            self.base
                + pos
                + found
                    .len
                    .max(1)
                    .min(text.len() - pos.min(text.len()))
                    .max(usize::from(pos < text.len())),
        );
        let mut d = Diagnostic::error(codes::SYNTAX, span, message);
        if let Some(word) = &found.word {
            let mut candidates: Vec<&str> = STATEMENT_KEYWORDS.to_vec();
            candidates.extend_from_slice(ACTION_KEYWORDS);
            candidates.extend_from_slice(&[
                "when", "business", "warn", "else", "and", "or", "not", "template", "pipe", "from",
            ]);
            if let Some(c) = closest(word, candidates) {
                d = d.with_help(format!("did you mean `{c}`?"));
            }
        }
        if found.text == "==" {
            d = d.with_help("write `=` to compare");
        }
        d
    }
}

fn atoms_in(b: &Builder, inner: &[Pair<Rule>]) -> Vec<Atom> {
    inner
        .iter()
        .filter(|c| matches!(c.as_rule(), Rule::atom | Rule::elem))
        .map(|c| b.atom(c.clone()))
        .collect()
}

fn is_punct(r: Rule) -> bool {
    matches!(
        r,
        Rule::lbrace
            | Rule::rbrace
            | Rule::lparen
            | Rule::rparen
            | Rule::lbrack
            | Rule::rbrack
            | Rule::comma
            | Rule::colon
            | Rule::eq
            | Rule::arrow
            | Rule::bar
            | Rule::EOI
    )
}

/// The length of `text` without trailing spaces and `#` comments.
fn code_len(text: &str) -> usize {
    let mut end = text.trim_end().len();
    loop {
        let line_start = text[..end].rfind('\n').map(|i| i + 1).unwrap_or(0);
        match comment_start(&text[line_start..end]) {
            Some(i) => end = text[..line_start + i].trim_end().len(),
            None => return end,
        }
    }
}

/// Where a `#` comment starts in one line of code, outside strings.
fn comment_start(line: &str) -> Option<usize> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_str => escaped = true,
            '"' => in_str = !in_str,
            '#' if !in_str => return Some(i),
            _ => {}
        }
    }
    None
}

/// Undoes `\"`, `\\`, `\n` and `\t` inside a quoted string.
pub fn unescape(quoted: &str) -> String {
    let inner = quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(quoted);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes a text so that [`unescape`] gives it back.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Found {
    text: String,
    word: Option<String>,
    len: usize,
}

impl Found {
    fn describe(&self) -> String {
        if self.text.is_empty() {
            "the end of the file".to_string()
        } else {
            format!("`{}`", self.text)
        }
    }
}

fn found_at(text: &str, pos: usize) -> Found {
    let rest = text.get(pos..).unwrap_or("");
    let first = rest.chars().next();
    match first {
        None => Found {
            text: String::new(),
            word: None,
            len: 0,
        },
        Some(c) if c.is_alphanumeric() || c == '_' || c == '$' => {
            let w: String = rest
                .chars()
                .take_while(|c| {
                    c.is_alphanumeric() || matches!(c, '_' | '.' | '@' | '$' | '+' | '-')
                })
                .collect();
            let len = w.len();
            Found {
                word: Some(w.clone()),
                text: w,
                len,
            }
        }
        Some('"') => {
            let end = rest[1..]
                .find('"')
                .map(|i| i + 2)
                .unwrap_or(rest.len())
                .min(40);
            let end = (0..=end)
                .rev()
                .find(|i| rest.is_char_boundary(*i))
                .unwrap_or(0);
            Found {
                text: rest[..end].to_string(),
                word: None,
                len: end,
            }
        }
        Some(_) => {
            let w: String = rest
                .chars()
                .take_while(|c| "=!<>&|-~".contains(*c))
                .take(2)
                .collect();
            let w = if w.is_empty() {
                first.map(String::from).unwrap_or_default()
            } else {
                w
            };
            let len = w.len();
            Found {
                text: w,
                word: None,
                len,
            }
        }
    }
}

/// The last word or symbol before `pos`, skipping spaces and comments.
fn previous_token(text: &str, pos: usize) -> Option<String> {
    let before = text.get(..pos)?;
    // Drop comments at line ends.
    let mut cleaned = String::new();
    for line in before.split_inclusive('\n') {
        let code = match line.find('#') {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        cleaned.push_str(code);
    }
    let trimmed = cleaned.trim_end();
    let last = trimmed.chars().last()?;
    if last.is_alphanumeric() || last == '_' {
        let word: String = trimmed
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '@'))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Some(word)
    } else if trimmed.ends_with("->") {
        Some("->".into())
    } else if last == '"' {
        None
    } else {
        Some(last.to_string())
    }
}

/// The "expected ..." part, in words, for the rules pest tried.
fn describe_expected(positives: &[Rule], prev: Option<&str>) -> String {
    let wants_value = positives.iter().any(|r| {
        matches!(
            r,
            Rule::atom
                | Rule::elem
                | Rule::word
                | Rule::string
                | Rule::list
                | Rule::param_ref
                | Rule::name
                | Rule::path
                | Rule::modifier
        )
    });
    if wants_value {
        if let Some(p) = prev {
            if let Some(phrase) = value_after(p) {
                return phrase.to_string();
            }
        }
    }
    if positives.contains(&Rule::stmt_only) {
        return "a statement such as `field`, `status`, `flow`, `team`, `sla`, `route`, `on` or `view`".into();
    }
    let mut words: Vec<String> = Vec::new();
    let stmt_kws = positives.iter().filter(|r| is_statement_kw(**r)).count();
    let action_kws = positives.iter().filter(|r| is_action_kw(**r)).count();
    for r in positives {
        let phrase = if is_statement_kw(*r) {
            if stmt_kws >= 3 {
                "a statement such as `field`, `status`, `flow`, `team`, `sla`, `route`, `on` or `view`".to_string()
            } else {
                kw_text(*r)
            }
        } else if is_action_kw(*r) {
            if action_kws >= 3 {
                "an action such as `assign`, `set`, `move`, `reply`, `note` or `notify`".to_string()
            } else {
                kw_text(*r)
            }
        } else {
            match r {
                Rule::name => "a name".into(),
                Rule::path => "a name such as `priority` or `contact.phone`".into(),
                Rule::atom
                | Rule::word
                | Rule::param_ref
                | Rule::list
                | Rule::elem
                | Rule::free_word => "a value".into(),
                Rule::string => "text in double quotes".into(),
                Rule::modifier => "a word".into(),
                Rule::condition
                | Rule::comparison
                | Rule::paren
                | Rule::within_hours
                | Rule::script_file
                | Rule::script_inline => "a condition such as `priority = high`".into(),
                Rule::cmp_op | Rule::op_sym | Rule::not_in => {
                    "a comparison (`=`, `!=`, `<`, `>`, `~`, `in` or `contains`)".into()
                }
                Rule::kw_and | Rule::kw_or | Rule::bad_and | Rule::bad_or => "`and`, `or`".into(),
                Rule::trigger => "a trigger such as `message.received`".into(),
                Rule::actions | Rule::body | Rule::lbrace => "`{`".into(),
                Rule::rbrace => "`}`".into(),
                Rule::lparen => "`(`".into(),
                Rule::rparen => "`)`".into(),
                Rule::lbrack => "`[`".into(),
                Rule::rbrack => "`]`".into(),
                Rule::comma => "`,`".into(),
                Rule::colon => "`:`".into(),
                Rule::eq => "`=`".into(),
                Rule::arrow => "`->`".into(),
                Rule::bar => "`|`".into(),
                Rule::EOI => "the end of the file".into(),
                Rule::params => "`(` and the template's parameters".into(),
                Rule::from_clause => "`from`".into(),
                Rule::field_type => {
                    "a field type (`text`, `number`, `choice(...)`, `date`, `bool` or `agent`)"
                        .into()
                }
                Rule::route_entry | Rule::route_else => {
                    "a route line such as `\"+5511\" -> frontline` or `else -> frontline`".into()
                }
                Rule::view_where | Rule::view_sort => "`where` or `sort by`".into(),
                Rule::rule_name => "`rule`".into(),
                Rule::pipe_decl
                | Rule::template_decl
                | Rule::file
                | Rule::pipe_head
                | Rule::template_head => "`pipe` or `template`".into(),
                Rule::value_expr => "a value".into(),
                Rule::notify_to => "who to notify".into(),
                r if format!("{r:?}").starts_with("kw_") => kw_text(*r),
                _ => "something else".into(),
            }
        };
        if !words.contains(&phrase) {
            words.push(phrase);
        }
    }
    if words.is_empty() {
        return "something else".into();
    }
    words.truncate(5);
    match words.len() {
        1 => words.remove(0),
        _ => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {last}", words.join(", "))
        }
    }
}

fn kw_text(r: Rule) -> String {
    let name = format!("{r:?}");
    format!("`{}`", name.trim_start_matches("kw_"))
}

fn is_statement_kw(r: Rule) -> bool {
    matches!(
        r,
        Rule::kw_number
            | Rule::kw_timezone
            | Rule::kw_hours
            | Rule::kw_holidays
            | Rule::kw_field
            | Rule::kw_status
            | Rule::kw_flow
            | Rule::kw_team
            | Rule::kw_sla
            | Rule::kw_route
            | Rule::kw_rule
            | Rule::kw_on
            | Rule::kw_every
            | Rule::kw_view
            | Rule::number_stmt
            | Rule::timezone_stmt
            | Rule::hours_stmt
            | Rule::holidays_stmt
            | Rule::field_stmt
            | Rule::status_stmt
            | Rule::flow_stmt
            | Rule::team_stmt
            | Rule::sla_stmt
            | Rule::route_stmt
            | Rule::rule_stmt
            | Rule::every_stmt
            | Rule::view_stmt
            | Rule::stmt_only
    )
}

fn is_action_kw(r: Rule) -> bool {
    matches!(
        r,
        Rule::kw_assign
            | Rule::kw_unassign
            | Rule::kw_set
            | Rule::kw_move
            | Rule::kw_reply
            | Rule::kw_note
            | Rule::kw_notify
            | Rule::kw_webhook
            | Rule::assign_act
            | Rule::unassign_act
            | Rule::set_act
            | Rule::move_act
            | Rule::reply_act
            | Rule::reply_template_act
            | Rule::note_act
            | Rule::notify_act
            | Rule::webhook_act
    )
}

/// What a value after a given keyword should be, in words.
fn value_after(prev: &str) -> Option<&'static str> {
    Some(match prev {
        "move" => "a status name",
        "assign" => "a team, a route or an agent's e-mail",
        "set" => "a field name",
        "flow" | "|" => "a status name",
        "sla" => "an SLA kind (`first_response`, `next_response` or `resolution`)",
        "status" => "a status name",
        "field" => "a field name",
        ":" => "a field type (`text`, `number`, `choice(...)`, `date`, `bool` or `agent`)",
        "team" => "a team name",
        "route" => "a route name",
        "by" => "what to route by, such as `contact.phone` or a field name",
        "view" => "a view name",
        "pipe" => "a pipe name",
        "template" => "a template name",
        "from" => "a template name",
        "on" => "a trigger such as `message.received`",
        "when" | "where" | "and" | "or" | "not" => "a condition such as `priority = high`",
        "every" => "a schedule in double quotes, such as \"0 0 8 * * Mon-Fri\"",
        "reply" => "the reply text in double quotes, or `template`",
        "note" => "the note text in double quotes",
        "timezone" => "a time zone in double quotes, such as \"America/Sao_Paulo\"",
        "hours" => "business hours in double quotes, such as \"Mon-Fri 09:00-18:00\"",
        "holidays" => "a date in double quotes, such as \"2026-12-25\"",
        "number" => "a phone number in double quotes, such as \"+55 11 4000-1000\"",
        "webhook" => "an address in double quotes, such as \"https://example.com/hook\"",
        "warn" => "a duration such as `10m`",
        "notify" => "who to notify: `team`, `agent`, `manager` or `assignee`",
        "language" => "a language code in double quotes, such as \"pt_BR\"",
        "params" => "a list such as `[contact.name]`",
        "=" => "a value",
        _ => return None,
    })
}

//! The canonical formatter of `.flow` files: one layout for every file, with
//! every comment kept.
//!
//! # Layout
//!
//! - Two spaces per level of indentation, one statement or action per line,
//!   no trailing whitespace, and the file ends with exactly one newline (an
//!   empty file stays empty).
//! - Exactly one blank line between top-level items (and after the last item,
//!   before any comments that follow it). Inside a body, a run of one or more
//!   blank lines in the source becomes one blank line; none is added, and
//!   none is kept right after a `{` or right before a `}`.
//! - Heads: `pipe NAME "Title" from tpl(a: 1, b: "x") {`,
//!   `template NAME(a, b = 15m) from tpl(a: $a) {`.
//! - `number "+55 11 4000-1000" id "1234"`, `timezone "..."`, `hours "..."`,
//!   `holidays "a", "b"`.
//! - `field NAME: TYPE`, `field NAME: choice(a, b, c) = default shown`.
//! - `status NAME mod1 mod2`, `flow a -> b | c`, `team NAME { a@x.com b@x.com }`
//!   (members separated by one space, always on one line; `team NAME {}` when
//!   empty).
//! - `sla KIND WINDOW [business] [warn W] [when COND]`.
//! - `route NAME by PATH {`, one entry per line (`"k1" "k2" -> team`,
//!   `else -> team`), `}`. The `->` arrows of one table are aligned in a
//!   column: keys are padded with spaces to the widest key list of the table.
//! - `[rule NAME ]on TRIGGER[(arg)][ DURATION][ when COND] {`, one action per
//!   line, `}`; `every "CRON"[ when COND] {` ... `}`;
//!   `view NAME "Title" {`, then `where COND` and `sort by PATH [dir]` on their
//!   own lines (in that order), `}`.
//! - A block with nothing inside (no statements, actions, entries or
//!   comments) is printed `{}` on the head's line: `on card.created {}`,
//!   `pipe x {}`.
//! - Conditions are printed on one line, in the order written: `and`, `or`,
//!   `not`, `lhs OP rhs` (`not in` as two words), parentheses exactly where the
//!   source has them, `within hours`, `script("f.rhai")`, `script {code}` with
//!   the code verbatim. Operators that programmers write (`&&`, `||`, `!`) are
//!   kept as written so the checker can still explain them.
//! - Values: strings re-quoted by [`crate::parse::escape`], words and `$param`s
//!   verbatim, lists as `[a, b]`.
//!
//! # Comments
//!
//! Comments are found lexically (a `#` outside strings and inline scripts)
//! and each is attached to one place:
//!
//! - A comment after code on the same line trails the printed line that holds
//!   that code, after two spaces: `code  # comment`. After a block's `{` it
//!   trails the head line; after its `}` it trails the `}` line.
//! - A comment on its own line leads the next statement, action, route line,
//!   `where`/`sort` line or item, at that thing's indentation; with nothing
//!   after it in its block, it is printed before the `}` at the inner
//!   indentation; after the last item, at the end of the file.
//! - A comment inside something printed on one line (a condition over several
//!   lines, a team list, a block's head) is moved to just before that
//!   statement, on its own line.
//!
//! A comment's text is kept as written, except that whitespace at its end
//! is dropped.
//!
//! # Refusals
//!
//! [`format()`] returns diagnostics instead of text when:
//!
//! - the file has syntax errors (the parser's diagnostics, unchanged);
//! - a view has two `where` or two `sort by` lines: the tree keeps only the
//!   last one, so printing the tree would delete the others from the text;
//! - its own output would not parse to the same tree or would not hold the
//!   same comments. This is a safety net: no comment is ever lost, merged
//!   with another or duplicated, and the meaning never changes.

use crate::ast::*;
use crate::codes;
use crate::parse::grammar::{FlowParser, Rule};
use crate::parse::{escape, parse};
use crate::source::{FileId, Span};
use crate::Diagnostic;
use pest::Parser as _;

/// Formats a `.flow` text in the canonical layout (see the module docs), or
/// says why it cannot: syntax errors, or a reason from the module's
/// "Refusals" section.
pub fn format(text: &str) -> Result<String, Vec<Diagnostic>> {
    let (file, diags) = parse(FileId(0), text);
    if !diags.is_empty() {
        return Err(diags);
    }
    let whole = Span::new(FileId(0), 0, 0);
    let lexed = Lexed::new(text).ok_or_else(|| {
        vec![Diagnostic::error(
            codes::SYNTAX,
            whole,
            "this file cannot be formatted: it does not read as a whole",
        )]
    })?;
    // The tree keeps only the last `where` and `sort by` of a view: printing
    // it would delete the others from the text, so refuse instead.
    if !lexed.repeated.is_empty() {
        return Err(lexed
            .repeated
            .iter()
            .map(|&(rule, start, end)| {
                let span = Span::new(FileId(0), start, end);
                if rule == Rule::view_where {
                    Diagnostic::error(
                        codes::SYNTAX,
                        span,
                        "a view has one `where` line, and this one replaces the one before it",
                    )
                    .with_help("join the conditions with `and` in one `where` line")
                } else {
                    Diagnostic::error(
                        codes::SYNTAX,
                        span,
                        "a view sorts by one key, and this `sort by` replaces the one before it",
                    )
                    .with_help("keep only the `sort by` you mean")
                }
            })
            .collect());
    }
    let mut root = Builder {
        text,
        lexed: &lexed,
    }
    .file(&file);
    for (k, c) in lexed.comments.iter().enumerate() {
        place(&mut root, k, c);
    }
    let mut printer = Printer {
        out: String::with_capacity(text.len() + 64),
        comments: &lexed.comments,
    };
    printer.body(&root, 0, true);
    let out = printer.out;

    // Never hand back text that means something else or lost a comment.
    let (again, diags) = parse(FileId(0), &out);
    let same_comments = Lexed::new(&out).is_some_and(|l| sorted_texts(&l) == sorted_texts(&lexed));
    if !diags.is_empty() || again != file || !same_comments {
        return Err(vec![Diagnostic::error(
            codes::SYNTAX,
            whole,
            "this file cannot be formatted without changing its meaning or its comments; it was left as it is",
        )
        .with_help("this is a bug in the formatter: please report it with the file")]);
    }
    Ok(out)
}

fn sorted_texts(l: &Lexed) -> Vec<&str> {
    let mut v: Vec<&str> = l.comments.iter().map(|c| c.text.as_str()).collect();
    v.sort_unstable();
    v
}

// ------------------------------------------------------------------ lexing

/// One `#` comment of the source.
struct Comment {
    /// Byte offset of the `#`.
    start: usize,
    /// From `#` to the end of the line, trailing whitespace removed.
    text: String,
    /// Code comes before it on its line.
    trailing: bool,
    /// The last code byte before it, if any.
    prev: Option<usize>,
    /// A blank line separates it from what comes before.
    blank: bool,
}

/// What the formatter needs to know of the text besides the tree.
struct Lexed {
    comments: Vec<Comment>,
    /// Code bytes in order: `(offset, byte)`; strings and inline scripts are
    /// represented by their first and last byte, with byte 0.
    code: Vec<(usize, u8)>,
    /// Second and later `where`/`sort` clauses of a view: `(rule, start, end)`.
    repeated: Vec<(Rule, usize, usize)>,
}

impl Lexed {
    /// Lexes a text that parses as a whole file; `None` if it does not.
    fn new(text: &str) -> Option<Lexed> {
        let pairs = FlowParser::parse(Rule::file, text).ok()?;
        let mut protected = Vec::new();
        let mut repeated = Vec::new();
        for p in pairs.flatten() {
            match p.as_rule() {
                Rule::string | Rule::script_code => {
                    protected.push((p.as_span().start(), p.as_span().end()))
                }
                Rule::view_stmt => {
                    for rule in [Rule::view_where, Rule::view_sort] {
                        let clauses = p.clone().into_inner().filter(|c| c.as_rule() == rule);
                        for c in clauses.skip(1) {
                            repeated.push((rule, c.as_span().start(), c.as_span().end()));
                        }
                    }
                }
                _ => {}
            }
        }
        protected.sort_unstable();
        let bytes = text.as_bytes();
        let mut comments = Vec::new();
        let mut code = Vec::new();
        let (mut i, mut k) = (0usize, 0usize);
        while i < bytes.len() {
            while k < protected.len() && protected[k].0 < i {
                k += 1;
            }
            if let Some(&(s, e)) = protected.get(k) {
                if s == i && e > s {
                    code.push((s, 0));
                    code.push((e - 1, 0));
                    i = e;
                    continue;
                }
            }
            match bytes[i] {
                b'#' => {
                    let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                    let prev = code.last().map(|&(q, _)| q);
                    let trailing = prev.is_some_and(|q| !text[q..i].contains('\n'));
                    comments.push(Comment {
                        start: i,
                        text: text[i..end].trim_end().to_string(),
                        trailing,
                        prev,
                        blank: blank_before(text, i),
                    });
                    i = end;
                }
                c if c.is_ascii_whitespace() => i += 1,
                c => {
                    code.push((i, c));
                    i += 1;
                }
            }
        }
        let mut lexed = Lexed {
            comments,
            code,
            repeated,
        };
        for k in 0..lexed.repeated.len() {
            let (rule, start, end) = lexed.repeated[k];
            let end = lexed.prev_code(end).map_or(end, |q| q + 1).max(start);
            lexed.repeated[k] = (rule, start, end);
        }
        Some(lexed)
    }

    /// The first code `{` at or after `from` (braces inside strings and
    /// inline scripts do not count).
    fn open_brace(&self, from: usize) -> Option<usize> {
        let k = self.code.partition_point(|&(q, _)| q < from);
        self.code[k..]
            .iter()
            .find(|&&(_, c)| c == b'{')
            .map(|&(q, _)| q)
    }

    /// The last code byte before `pos`.
    fn prev_code(&self, pos: usize) -> Option<usize> {
        let k = self.code.partition_point(|&(q, _)| q < pos);
        k.checked_sub(1).map(|k| self.code[k].0)
    }
}

/// Whether one or more blank lines come right before `pos`.
fn blank_before(text: &str, pos: usize) -> bool {
    let before = &text[..pos];
    let code_end = before.trim_end_matches([' ', '\t', '\r', '\n']).len();
    before[code_end..].matches('\n').count() >= 2
}

// ------------------------------------------------------------------ layout tree

/// One printed construct: a line, or a block with a head line, a body and a
/// closing `}` line.
struct Node {
    /// Source bytes it covers.
    start: usize,
    end: usize,
    /// A blank line comes before it in the source.
    blank: bool,
    /// Own-line comments before it.
    leading: Vec<usize>,
    /// Comments from inside it, printed just before it.
    moved: Vec<usize>,
    /// The comment at the end of its (last) line.
    trailing: Option<usize>,
    kind: Kind,
}

enum Kind {
    Line(String),
    Block(Block),
}

struct Block {
    /// The head line without ` {`.
    head: String,
    /// Offset of the closing `}`.
    close: usize,
    body: Body,
}

/// The inside of a block, or the whole file.
#[derive(Default)]
struct Body {
    /// Offset of the opening `{` (none for the file).
    open: Option<usize>,
    children: Vec<Node>,
    /// The comment after the opening `{`.
    head_trailing: Option<usize>,
    /// Own-line comments after the last child.
    inner_end: Vec<usize>,
}

/// Gives comment number `k` its place in `body`.
fn place(body: &mut Body, k: usize, c: &Comment) {
    let p = c.start;
    if let Some(n) = body.children.iter_mut().find(|n| n.start <= p && p < n.end) {
        if let Kind::Block(b) = &mut n.kind {
            if b.body.open.is_some_and(|o| o < p) && p < b.close {
                place(&mut b.body, k, c);
                return;
            }
        }
        n.moved.push(k);
        return;
    }
    if let (true, Some(q)) = (c.trailing, c.prev) {
        match body.children.iter_mut().find(|n| n.start <= q && q < n.end) {
            Some(n) if n.trailing.is_none() => {
                n.trailing = Some(k);
                return;
            }
            Some(_) => {}
            None if body.open == Some(q) && body.head_trailing.is_none() => {
                body.head_trailing = Some(k);
                return;
            }
            None => {}
        }
    }
    match body
        .children
        .iter_mut()
        .filter(|n| n.start > p)
        .min_by_key(|n| n.start)
    {
        Some(n) => n.leading.push(k),
        None => body.inner_end.push(k),
    }
}

/// Turns the syntax tree into the layout tree.
struct Builder<'a> {
    text: &'a str,
    lexed: &'a Lexed,
}

impl Builder<'_> {
    fn file(&self, f: &File) -> Body {
        Body {
            children: f.items.iter().map(|i| self.item(i)).collect(),
            ..Body::default()
        }
    }

    fn node(&self, start: usize, end: usize, kind: Kind) -> Node {
        // pest lets a rule that ends in an optional part (`number "..."
        // [id ...]`) swallow the whitespace and comments after it: end at the
        // last code byte instead.
        let end = self
            .lexed
            .prev_code(end)
            .map(|q| q + 1)
            .filter(|&e| e > start)
            .unwrap_or(end);
        Node {
            start,
            end,
            blank: blank_before(self.text, start),
            leading: Vec::new(),
            moved: Vec::new(),
            trailing: None,
            kind,
        }
    }

    fn line(&self, span: Span, text: String) -> Node {
        self.node(span.start as usize, span.end as usize, Kind::Line(text))
    }

    fn block(&self, span: Span, head: String, children: Vec<Node>) -> Node {
        let start = span.start as usize;
        let end = self
            .lexed
            .prev_code(span.end as usize)
            .map(|q| q + 1)
            .filter(|&e| e > start)
            .unwrap_or(span.end as usize);
        let close = end.saturating_sub(1);
        let open = self.lexed.open_brace(start).filter(|&o| o < close);
        let body = Body {
            open,
            children,
            ..Body::default()
        };
        self.node(start, end, Kind::Block(Block { head, close, body }))
    }

    fn item(&self, item: &Item) -> Node {
        match item {
            Item::Pipe(p) => {
                let mut head = format!("pipe {}", p.name.text);
                if let Some(t) = &p.title {
                    head.push(' ');
                    head.push_str(&atom(t));
                }
                if let Some(f) = &p.from {
                    push_from_clause(&mut head, f);
                }
                self.block(p.span, head, self.stmts(&p.body))
            }
            Item::Template(t) => {
                let params: Vec<String> = t
                    .params
                    .iter()
                    .map(|p| match &p.default {
                        Some(d) => format!("{} = {}", p.name.text, atom(d)),
                        None => p.name.text.clone(),
                    })
                    .collect();
                let mut head = format!("template {}({})", t.name.text, params.join(", "));
                if let Some(f) = &t.from {
                    push_from_clause(&mut head, f);
                }
                self.block(t.span, head, self.stmts(&t.body))
            }
        }
    }

    fn stmts(&self, body: &[Stmt]) -> Vec<Node> {
        body.iter().map(|s| self.stmt(s)).collect()
    }

    fn stmt(&self, s: &Stmt) -> Node {
        let line = |text: String| self.line(s.span, text);
        match &s.kind {
            StmtKind::Number { number, id } => {
                let mut t = format!("number {}", atom(number));
                if let Some(id) = id {
                    t.push_str(&format!(" id {}", atom(id)));
                }
                line(t)
            }
            StmtKind::Timezone(a) => line(format!("timezone {}", atom(a))),
            StmtKind::Hours(a) => line(format!("hours {}", atom(a))),
            StmtKind::Holidays(days) => line(format!("holidays {}", join(days, ", "))),
            StmtKind::Field {
                name,
                ty,
                choices,
                default,
                shown,
            } => {
                let mut t = format!("field {}: {}", name.text, ty.text);
                if let Some(c) = choices {
                    t.push_str(&format!("({})", join(c, ", ")));
                }
                if let Some(d) = default {
                    t.push_str(&format!(" = {}", atom(d)));
                }
                if *shown {
                    t.push_str(" shown");
                }
                line(t)
            }
            StmtKind::Status { name, modifiers } => {
                let mut t = format!("status {}", name.text);
                for m in modifiers {
                    t.push(' ');
                    t.push_str(&m.text);
                }
                line(t)
            }
            StmtKind::Flow { from, to } => {
                let to: Vec<&str> = to.iter().map(|i| i.text.as_str()).collect();
                line(format!("flow {} -> {}", from.text, to.join(" | ")))
            }
            StmtKind::Team { name, members } => {
                if members.is_empty() {
                    line(format!("team {} {{}}", name.text))
                } else {
                    line(format!("team {} {{ {} }}", name.text, join(members, " ")))
                }
            }
            StmtKind::Sla {
                kind,
                window,
                business,
                warn,
                when,
            } => {
                let mut t = format!("sla {} {}", kind.text, atom(window));
                if *business {
                    t.push_str(" business");
                }
                if let Some(w) = warn {
                    t.push_str(&format!(" warn {}", atom(w)));
                }
                push_when(&mut t, when.as_ref());
                line(t)
            }
            StmtKind::Route { name, by, entries } => {
                let keys: Vec<String> = entries
                    .iter()
                    .map(|e| {
                        if e.is_else {
                            "else".to_string()
                        } else {
                            join(&e.keys, " ")
                        }
                    })
                    .collect();
                let width = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
                let children = entries
                    .iter()
                    .zip(&keys)
                    .map(|(e, k)| self.line(e.span, format!("{k:<width$} -> {}", atom(&e.target))))
                    .collect();
                self.block(
                    s.span,
                    format!("route {} by {}", name.text, by.text),
                    children,
                )
            }
            StmtKind::Rule {
                name,
                trigger,
                when,
                actions,
            } => {
                let mut head = String::new();
                if let Some(n) = name {
                    head.push_str(&format!("rule {} ", n.text));
                }
                head.push_str("on ");
                head.push_str(&trigger.name.text);
                if let Some(a) = &trigger.arg {
                    head.push_str(&format!("({})", atom(a)));
                }
                if let Some(d) = &trigger.duration {
                    head.push(' ');
                    head.push_str(&atom(d));
                }
                push_when(&mut head, when.as_ref());
                self.block(s.span, head, self.actions(actions))
            }
            StmtKind::Every {
                cron,
                when,
                actions,
            } => {
                let mut head = format!("every {}", atom(cron));
                push_when(&mut head, when.as_ref());
                self.block(s.span, head, self.actions(actions))
            }
            StmtKind::View {
                name,
                title,
                filter,
                sort,
            } => {
                let mut head = format!("view {}", name.text);
                if let Some(t) = title {
                    head.push(' ');
                    head.push_str(&atom(t));
                }
                let mut children = Vec::new();
                if let Some(f) = filter {
                    let span = f.span();
                    let start = self.keyword_before(span.start as usize, "where");
                    let mut t = String::from("where ");
                    cond(f, &mut t);
                    children.push(self.node(start, span.end as usize, Kind::Line(t)));
                }
                if let Some((key, dir)) = sort {
                    let by = self.keyword_before(key.span.start as usize, "by");
                    let start = self.keyword_before(by, "sort");
                    let end = dir.as_ref().map_or(key.span.end, |d| d.span.end) as usize;
                    let mut t = format!("sort by {}", key.text);
                    if let Some(d) = dir {
                        t.push(' ');
                        t.push_str(&d.text);
                    }
                    children.push(self.node(start, end, Kind::Line(t)));
                }
                self.block(s.span, head, children)
            }
        }
    }

    /// Where the keyword `kw` that comes right before `pos` starts (`pos`
    /// itself if it is not there).
    fn keyword_before(&self, pos: usize, kw: &str) -> usize {
        self.lexed
            .prev_code(pos)
            .and_then(|last| (last + 1).checked_sub(kw.len()))
            .filter(|&start| self.text.get(start..start + kw.len()) == Some(kw))
            .unwrap_or(pos)
    }

    fn actions(&self, actions: &[Action]) -> Vec<Node> {
        actions
            .iter()
            .map(|a| self.line(a.span, action(a)))
            .collect()
    }
}

// ------------------------------------------------------------------ printing pieces

fn join(atoms: &[Atom], sep: &str) -> String {
    atoms.iter().map(atom).collect::<Vec<_>>().join(sep)
}

fn atom(a: &Atom) -> String {
    match &a.kind {
        AtomKind::Str(s) => escape(s),
        AtomKind::Word(w) => w.clone(),
        AtomKind::List(items) => format!("[{}]", join(items, ", ")),
        AtomKind::Param(p) => format!("${p}"),
    }
}

/// Lines longer than this break a `from` clause's arguments one per line.
const MAX_HEAD: usize = 100;

/// Appends ` from name(args)` to a head; arguments go one per line (with a
/// trailing comma) when the head would be too long to read at once.
fn push_from_clause(head: &mut String, f: &FromClause) {
    let args: Vec<String> = f
        .args
        .iter()
        .map(|(n, v)| format!("{}: {}", n.text, atom(v)))
        .collect();
    let one_line = format!(" from {}({})", f.template.text, args.join(", "));
    if head.len() + one_line.len() + 2 <= MAX_HEAD || args.is_empty() {
        head.push_str(&one_line);
    } else {
        head.push_str(&format!(" from {}(\n", f.template.text));
        for a in &args {
            head.push_str(&format!("  {a},\n"));
        }
        head.push(')');
    }
}

fn push_when(out: &mut String, when: Option<&Cond>) {
    if let Some(c) = when {
        out.push_str(" when ");
        cond(c, out);
    }
}

/// Whether a condition is a programmer's operator (`&&`, `||`, `!`).
fn bad_op(c: &Cond) -> Option<&str> {
    match c {
        Cond::BadOperator(op) => Some(op.text.as_str()),
        _ => None,
    }
}

/// Prints a condition in the order it was written. The parser stores
/// `a && b` as `And(a, And(Bad("&&"), b))` and `!a` as `And(Bad("!"), a)`;
/// both are printed back as written.
fn cond(c: &Cond, out: &mut String) {
    match c {
        Cond::And(l, r, _) => {
            if let Cond::And(bad, rhs, _) = &**r {
                if let Some(op) = bad_op(bad).filter(|op| !op.starts_with('!')) {
                    cond(l, out);
                    out.push(' ');
                    out.push_str(op);
                    out.push(' ');
                    cond(rhs, out);
                    return;
                }
            }
            if let Some(op) = bad_op(l).filter(|op| op.starts_with('!')) {
                out.push_str(op);
                cond(r, out);
                return;
            }
            cond(l, out);
            out.push_str(" and ");
            cond(r, out);
        }
        Cond::Or(l, r, _) => {
            cond(l, out);
            out.push_str(" or ");
            cond(r, out);
        }
        Cond::Not(x, _) => {
            out.push_str("not ");
            cond(x, out);
        }
        Cond::Paren(x, _) => {
            out.push('(');
            cond(x, out);
            out.push(')');
        }
        Cond::Compare { lhs, op, rhs } => {
            out.push_str(&lhs.text);
            out.push(' ');
            out.push_str(&compare_op(&op.text));
            out.push(' ');
            out.push_str(&atom(rhs));
        }
        Cond::WithinHours(_) => out.push_str("within hours"),
        Cond::ScriptFile(a) => {
            out.push_str("script(");
            out.push_str(&atom(a));
            out.push(')');
        }
        Cond::ScriptInline(code) => push_code(out, code),
        Cond::BadOperator(op) => out.push_str(&op.text),
    }
}

/// A comparison operator; `not in` with a comment between its words (which
/// the parser keeps in the operator's text) becomes plain `not in`.
fn compare_op(op: &str) -> String {
    if op.contains('#') && op.starts_with("not") && op.ends_with("in") {
        "not in".to_string()
    } else {
        op.to_string()
    }
}

fn push_code(out: &mut String, code: &Code) {
    out.push_str("script {");
    out.push_str(&code.text);
    out.push('}');
}

fn action(a: &Action) -> String {
    match &a.kind {
        ActionKind::Assign { target, modes } => {
            let mut t = format!("assign {}", atom(target));
            for m in modes {
                t.push(' ');
                t.push_str(&m.text);
            }
            t
        }
        ActionKind::Unassign => "unassign".to_string(),
        ActionKind::Set { field, value } => {
            let mut t = format!("set {} = ", field.text);
            match value {
                Value::Atom(v) => t.push_str(&atom(v)),
                Value::ScriptFile(f) => t.push_str(&format!("script({})", atom(f))),
                Value::ScriptInline(code) => push_code(&mut t, code),
            }
            t
        }
        ActionKind::Move(s) => format!("move {}", atom(s)),
        ActionKind::Reply(r) => format!("reply {}", atom(r)),
        ActionKind::ReplyTemplate {
            name,
            language,
            params,
        } => {
            let mut t = format!("reply template {}", atom(name));
            if let Some(l) = language {
                t.push_str(&format!(" language {}", atom(l)));
            }
            if let Some(p) = params {
                t.push_str(&format!(" params {}", atom(p)));
            }
            t
        }
        ActionKind::Note(n) => format!("note {}", atom(n)),
        ActionKind::Notify { kind, to, text } => match to {
            Some(to) => format!("notify {} {} {}", kind.text, atom(to), atom(text)),
            None => format!("notify {} {}", kind.text, atom(text)),
        },
        ActionKind::Webhook(u) => format!("webhook {}", atom(u)),
    }
}

// ------------------------------------------------------------------ output

struct Printer<'a> {
    out: String,
    comments: &'a [Comment],
}

/// Blank-line state inside one body.
struct Gap {
    /// Nothing printed in this body yet.
    first: bool,
    /// The previous thing was a top-level item: a blank line must follow.
    force: bool,
}

impl<'a> Printer<'a> {
    fn text(&self, k: usize) -> &'a str {
        let comments: &'a [Comment] = self.comments;
        comments.get(k).map_or("", |c| c.text.as_str())
    }

    fn blank(&self, k: usize) -> bool {
        self.comments.get(k).is_some_and(|c| c.blank)
    }

    fn line(&mut self, indent: usize, text: &str, trailing: Option<usize>) {
        for _ in 0..indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        if let Some(k) = trailing {
            self.out.push_str("  ");
            let t = self.text(k);
            self.out.push_str(t);
        }
        self.out.push('\n');
    }

    fn gap(&mut self, g: &mut Gap, blank: bool) {
        if !g.first && (blank || g.force) {
            self.out.push('\n');
        }
        g.first = false;
        g.force = false;
    }

    fn comment_line(&mut self, g: &mut Gap, indent: usize, k: usize, blank: bool) {
        self.gap(g, blank);
        let t = self.text(k);
        self.line(indent, t, None);
    }

    fn body(&mut self, body: &Body, indent: usize, top: bool) {
        let mut g = Gap {
            first: true,
            force: false,
        };
        for n in &body.children {
            for &k in &n.leading {
                let blank = self.blank(k);
                self.comment_line(&mut g, indent, k, blank);
            }
            let mut blank = n.blank;
            for &k in &n.moved {
                self.comment_line(&mut g, indent, k, blank);
                blank = false;
            }
            self.gap(&mut g, blank);
            self.node(n, indent);
            g.force = top;
        }
        for &k in &body.inner_end {
            let blank = self.blank(k);
            self.comment_line(&mut g, indent, k, blank);
        }
    }

    fn node(&mut self, n: &Node, indent: usize) {
        match &n.kind {
            Kind::Line(t) => self.line(indent, t, n.trailing),
            Kind::Block(b) => {
                let body = &b.body;
                if body.children.is_empty()
                    && body.inner_end.is_empty()
                    && body.head_trailing.is_none()
                {
                    self.line(indent, &format!("{} {{}}", b.head), n.trailing);
                } else {
                    self.line(indent, &format!("{} {{", b.head), body.head_trailing);
                    self.body(body, indent + 1, false);
                    self.line(indent, "}", n.trailing);
                }
            }
        }
    }
}

//! The syntax tree of a `.flow` file, exactly as written (before checking).
//!
//! Values are kept loose ([`Atom`]): the checker decides whether a word is a
//! duration, an e-mail or a choice value, so it can explain what is wrong.
//! Spans compare equal, so two trees are equal when they mean the same thing.

use crate::source::Span;
use serde::Serialize;

/// A whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct File {
    /// Pipes and templates in file order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Item {
    /// `pipe NAME ["Title"] [from TEMPLATE(...)] { ... }`
    Pipe(Pipe),
    /// `template NAME(params) [from TEMPLATE(...)] { ... }`
    Template(Template),
}

/// A name as written, with where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ident {
    /// The text.
    pub text: String,
    /// Where it is.
    #[serde(skip)]
    pub span: Span,
}

/// A pipe: one department's process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipe {
    /// Its name (used in URLs and the API).
    pub name: Ident,
    /// Its title for people.
    pub title: Option<Atom>,
    /// The template it is built from, if any.
    pub from: Option<FromClause>,
    /// Statements in order.
    pub body: Vec<Stmt>,
    /// Names declared by statements that failed to parse (`field foo ...`):
    /// the checker does not report them as unknown, since the syntax error
    /// already says what is wrong.
    #[serde(skip)]
    pub broken: Vec<String>,
    /// The whole item.
    #[serde(skip)]
    pub span: Span,
}

/// A parameterised, reusable pipe body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    /// Its name.
    pub name: Ident,
    /// Parameters, with optional defaults.
    pub params: Vec<Param>,
    /// Another template this one extends.
    pub from: Option<FromClause>,
    /// Statements in order.
    pub body: Vec<Stmt>,
    /// Names declared by statements that failed to parse.
    #[serde(skip)]
    pub broken: Vec<String>,
    /// The whole item.
    #[serde(skip)]
    pub span: Span,
}

/// One template parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    /// Its name.
    pub name: Ident,
    /// The value used when the caller gives none.
    pub default: Option<Atom>,
}

/// `from TEMPLATE(name: value, ...)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FromClause {
    /// The template's name.
    pub template: Ident,
    /// Arguments by name.
    pub args: Vec<(Ident, Atom)>,
    /// The whole clause.
    #[serde(skip)]
    pub span: Span,
}

/// A value as written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Atom {
    /// What kind of token it is.
    pub kind: AtomKind,
    /// Where it is.
    #[serde(skip)]
    pub span: Span,
}

/// The token kinds a value can be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum AtomKind {
    /// Quoted text, unescaped.
    Str(String),
    /// A bare word: `15m`, `high`, `ana@acme.com`, `contact.name`, `42`.
    Word(String),
    /// `[a, b, c]`
    List(Vec<Atom>),
    /// `$name`: a template parameter (only inside templates).
    Param(String),
}

impl Atom {
    /// The text of a word or a string, if it is one.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            AtomKind::Str(s) | AtomKind::Word(s) => Some(s),
            _ => None,
        }
    }
}

/// A statement inside a pipe or template.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stmt {
    /// What it says.
    pub kind: StmtKind,
    /// The whole statement.
    #[serde(skip)]
    pub span: Span,
}

/// The statements of a pipe body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StmtKind {
    /// `number "+55 11 4000-1000" [id "1234"]`
    Number {
        /// The phone number.
        number: Atom,
        /// Meta's phone_number_id, when named.
        id: Option<Atom>,
    },
    /// `timezone "America/Sao_Paulo"`
    Timezone(Atom),
    /// `hours "Mon-Fri 09:00-18:00, Sat 09:00-13:00"`
    Hours(Atom),
    /// `holidays "2026-12-25", "2027-01-01"`
    Holidays(Vec<Atom>),
    /// `field NAME: TYPE[(choices)] [= default] [shown]`
    Field {
        /// Field name.
        name: Ident,
        /// Type name as written.
        ty: Ident,
        /// `choice(...)` values.
        choices: Option<Vec<Atom>>,
        /// Default value.
        default: Option<Atom>,
        /// Shown on the board's cards.
        shown: bool,
    },
    /// `status NAME [kind] [initial] [final]`
    Status {
        /// Status name.
        name: Ident,
        /// The words after the name.
        modifiers: Vec<Ident>,
    },
    /// `flow A -> B | C`
    Flow {
        /// From this status.
        from: Ident,
        /// To these.
        to: Vec<Ident>,
    },
    /// `team NAME { members }`
    Team {
        /// Team name.
        name: Ident,
        /// Agent e-mails (or a list parameter).
        members: Vec<Atom>,
    },
    /// `sla KIND WINDOW [business] [warn W] [when COND]`
    Sla {
        /// first_response, next_response or resolution.
        kind: Ident,
        /// The window.
        window: Atom,
        /// Counted in business hours only.
        business: bool,
        /// The warning point.
        warn: Option<Atom>,
        /// Applies only to cards matching this.
        when: Option<Cond>,
    },
    /// `route NAME by PATH { keys -> team ... else -> team }`
    Route {
        /// Route name.
        name: Ident,
        /// What is looked up.
        by: Ident,
        /// Lines in order; `else` has no keys.
        entries: Vec<RouteEntry>,
    },
    /// `[rule NAME] on TRIGGER [when COND] { actions }`
    Rule {
        /// Optional name.
        name: Option<Ident>,
        /// What starts it.
        trigger: Trigger,
        /// Optional condition.
        when: Option<Cond>,
        /// What it does.
        actions: Vec<Action>,
    },
    /// `every "CRON" [when COND] { actions }`
    Every {
        /// The cron expression.
        cron: Atom,
        /// Cards it applies to.
        when: Option<Cond>,
        /// What it does.
        actions: Vec<Action>,
    },
    /// `view NAME ["Title"] { where COND  sort by PATH [asc|desc] }`
    View {
        /// View name.
        name: Ident,
        /// Its title.
        title: Option<Atom>,
        /// Filter.
        filter: Option<Cond>,
        /// Sort key and direction word.
        sort: Option<(Ident, Option<Ident>)>,
    },
}

/// One line of a route table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteEntry {
    /// The keys (empty for `else`).
    pub keys: Vec<Atom>,
    /// The team it goes to.
    pub target: Atom,
    /// Whether this is the `else` line.
    pub is_else: bool,
    /// The whole line.
    #[serde(skip)]
    pub span: Span,
}

/// `card.created`, `status.changed(resolved)`, `idle 7d`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trigger {
    /// The dotted name.
    pub name: Ident,
    /// The argument in parentheses.
    pub arg: Option<Atom>,
    /// A duration after the name.
    pub duration: Option<Atom>,
    /// The whole trigger.
    #[serde(skip)]
    pub span: Span,
}

/// A condition (`when ...`, `where ...`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Cond {
    /// Both hold.
    And(Box<Cond>, Box<Cond>, #[serde(skip)] Span),
    /// Either holds.
    Or(Box<Cond>, Box<Cond>, #[serde(skip)] Span),
    /// Does not hold.
    Not(Box<Cond>, #[serde(skip)] Span),
    /// `( ... )` as written.
    Paren(Box<Cond>, #[serde(skip)] Span),
    /// `lhs OP rhs`
    Compare {
        /// A field, `status`, `contact.x`, `message.x` ...
        lhs: Ident,
        /// The operator as written.
        op: Ident,
        /// The value.
        rhs: Atom,
    },
    /// `within hours`
    WithinHours(#[serde(skip)] Span),
    /// `script("file.rhai")`
    ScriptFile(Atom),
    /// `script { code }`
    ScriptInline(Code),
    /// `&&`, `||`, `!` written where `and`, `or`, `not` belong.
    BadOperator(Ident),
}

impl Cond {
    /// The span of the whole condition.
    pub fn span(&self) -> Span {
        match self {
            Cond::And(_, _, s) | Cond::Or(_, _, s) | Cond::Not(_, s) | Cond::Paren(_, s) => *s,
            Cond::WithinHours(s) => *s,
            Cond::Compare { lhs, rhs, .. } => lhs.span.to(rhs.span),
            Cond::ScriptFile(a) => a.span,
            Cond::ScriptInline(c) => c.span,
            Cond::BadOperator(i) => i.span,
        }
    }
}

/// Inline rhai code between braces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Code {
    /// The code without the outer braces.
    pub text: String,
    /// The braces and what is between them.
    #[serde(skip)]
    pub span: Span,
}

/// One action of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// What it does.
    pub kind: ActionKind,
    /// The whole action.
    #[serde(skip)]
    pub span: Span,
}

/// The actions a rule can take.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ActionKind {
    /// `assign TARGET [modes]`
    Assign {
        /// Team, route or agent e-mail.
        target: Atom,
        /// round_robin, least_busy, sticky, available.
        modes: Vec<Ident>,
    },
    /// `unassign`
    Unassign,
    /// `set FIELD = VALUE`
    Set {
        /// The field.
        field: Ident,
        /// The value.
        value: Value,
    },
    /// `move STATUS`
    Move(Atom),
    /// `reply "text"`
    Reply(Atom),
    /// `reply template NAME [language L] [params [...]]`
    ReplyTemplate {
        /// Template name at Meta.
        name: Atom,
        /// Language code.
        language: Option<Atom>,
        /// Parameter list.
        params: Option<Atom>,
    },
    /// `note "text"`
    Note(Atom),
    /// `notify team|agent|manager|assignee [who] "text"`
    Notify {
        /// Who kind.
        kind: Ident,
        /// Team name or agent e-mail.
        to: Option<Atom>,
        /// The text.
        text: Atom,
    },
    /// `webhook "https://..."`
    Webhook(Atom),
}

/// The right side of `set`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Value {
    /// A literal or a path.
    Atom(Atom),
    /// `script("file.rhai")`
    ScriptFile(Atom),
    /// `script { code }`
    ScriptInline(Code),
}

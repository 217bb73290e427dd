//! The checked workflow: what the engine runs. Every name in it is known to
//! exist, every value has its type, every regex, script and text template is
//! compiled. Built only by [`crate::check`].

use crate::values::BusinessHours;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use switchboard_script::CompiledScript;

/// All pipes of all files.
#[derive(Debug, Clone, Default)]
pub struct Workflow {
    /// Pipes in file order.
    pub pipes: Vec<Pipe>,
}

impl Workflow {
    /// A pipe by name.
    pub fn pipe(&self, name: &str) -> Option<&Pipe> {
        self.pipes.iter().find(|p| p.name == name)
    }
    /// The pipe a WhatsApp number (digits only, `551140001000`) feeds.
    pub fn pipe_for_number(&self, digits: &str) -> Option<&Pipe> {
        self.pipes
            .iter()
            .find(|p| p.numbers.iter().any(|n| n.digits == digits))
    }
}

/// Where something was written: `workflows/support.flow:52:3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// File path.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One department's process.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Name, used in URLs and the API.
    pub name: String,
    /// Title for people.
    pub title: String,
    /// Where the pipe is declared.
    pub origin: Origin,
    /// The WhatsApp numbers that feed it.
    pub numbers: Vec<PhoneNumber>,
    /// Its time zone (business hours, schedules).
    pub timezone: chrono_tz::Tz,
    /// Business hours; open always when the pipe gives none.
    pub hours: BusinessHours,
    /// Days with no business hours.
    pub holidays: Vec<NaiveDate>,
    /// Typed fields, in order.
    pub fields: Vec<Field>,
    /// Statuses, in order; exactly one is initial.
    pub statuses: Vec<Status>,
    /// Allowed moves; `None` means any move is allowed.
    pub flows: Option<BTreeMap<String, Vec<String>>>,
    /// Teams by name.
    pub teams: Vec<Team>,
    /// SLA windows, in file order (later `when` lines win over plain ones).
    pub slas: Vec<Sla>,
    /// Routing tables.
    pub routes: Vec<Route>,
    /// Rules, in file order.
    pub rules: Vec<Rule>,
    /// Scheduled rules.
    pub schedules: Vec<Schedule>,
    /// Saved filters.
    pub views: Vec<View>,
}

impl Pipe {
    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    /// A status by name.
    pub fn status(&self, name: &str) -> Option<&Status> {
        self.statuses.iter().find(|s| s.name == name)
    }
    /// The status new cards start in.
    pub fn initial_status(&self) -> Option<&Status> {
        self.statuses.iter().find(|s| s.initial)
    }
    /// A team by name.
    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.name == name)
    }
    /// A route by name.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }
    /// Whether the flow allows moving from one status to another.
    pub fn allows_move(&self, from: &str, to: &str) -> bool {
        if from == to {
            return true;
        }
        if self.status(from).is_some_and(|s| s.is_final) {
            return false;
        }
        match &self.flows {
            None => true,
            Some(flows) => flows.get(from).is_some_and(|t| t.iter().any(|x| x == to)),
        }
    }
    /// Where a card may go from a status.
    pub fn moves_from(&self, from: &str) -> Vec<&str> {
        match &self.flows {
            None => self
                .statuses
                .iter()
                .map(|s| s.name.as_str())
                .filter(|s| *s != from)
                .collect(),
            Some(f) => f
                .get(from)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        }
    }
}

/// A WhatsApp number of a pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    /// As written: `+55 11 4000-1000`.
    pub display: String,
    /// Digits only: `551140001000`.
    pub digits: String,
    /// Meta's phone_number_id, when the workflow names it.
    pub phone_number_id: Option<String>,
}

/// A typed field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: FieldType,
    /// Value new cards get.
    pub default: Option<Value>,
    /// Shown on the board's cards.
    pub shown: bool,
}

/// The types a field can have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// Free text.
    Text,
    /// A number.
    Number,
    /// One of a list of words.
    Choice(Vec<String>),
    /// A calendar date.
    Date,
    /// Yes or no.
    Bool,
    /// An agent, by e-mail.
    Agent,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Text => f.write_str("text"),
            FieldType::Number => f.write_str("number"),
            FieldType::Choice(c) => write!(f, "choice({})", c.join(", ")),
            FieldType::Date => f.write_str("date"),
            FieldType::Bool => f.write_str("bool"),
            FieldType::Agent => f.write_str("agent"),
        }
    }
}

/// A typed value.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Value {
    /// Text (also choice values, e-mails, status and team names).
    Text(String),
    /// A number.
    Number(f64),
    /// A date.
    Date(NaiveDate),
    /// Yes or no.
    Bool(bool),
    /// Nothing (`none`).
    None,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Number(n) => write!(f, "{n}"),
            Value::Date(d) => write!(f, "{d}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::None => f.write_str("none"),
        }
    }
}

/// What a status means for indicators and clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// Nobody has touched the card yet.
    Open,
    /// Someone works on it.
    Active,
    /// Waiting on someone else: SLA clocks stop.
    Paused,
    /// Solved.
    Done,
    /// Over.
    Closed,
}

impl StatusKind {
    /// All kinds with their names.
    pub const ALL: [(&'static str, StatusKind); 5] = [
        ("open", StatusKind::Open),
        ("active", StatusKind::Active),
        ("paused", StatusKind::Paused),
        ("done", StatusKind::Done),
        ("closed", StatusKind::Closed),
    ];
    /// Whether a card in this kind of status still counts as open work.
    pub fn is_open_work(self) -> bool {
        !matches!(self, StatusKind::Done | StatusKind::Closed)
    }
}

/// The WhatsApp message types (`message.type`; in webhooks and scripted
/// conversations each is also the key of the message's payload).
pub const MESSAGE_TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "unsupported",
    "unknown",
];

/// A status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: StatusKind,
    /// New cards start here.
    pub initial: bool,
    /// Nothing moves on from here.
    pub is_final: bool,
}

/// A team of agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Name.
    pub name: String,
    /// Agent e-mails in the order written (round robin follows it).
    pub members: Vec<String>,
}

/// The SLA kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaKind {
    /// Customer's first message → first team reply.
    FirstResponse,
    /// Each customer message → next team reply.
    NextResponse,
    /// Card created → done.
    Resolution,
}

impl SlaKind {
    /// All kinds with their names.
    pub const ALL: [(&'static str, SlaKind); 3] = [
        ("first_response", SlaKind::FirstResponse),
        ("next_response", SlaKind::NextResponse),
        ("resolution", SlaKind::Resolution),
    ];
    /// The name as written in `.flow` files.
    pub fn name(self) -> &'static str {
        match self {
            SlaKind::FirstResponse => "first_response",
            SlaKind::NextResponse => "next_response",
            SlaKind::Resolution => "resolution",
        }
    }
}

/// An SLA window.
#[derive(Debug, Clone)]
pub struct Sla {
    /// Which clock.
    pub kind: SlaKind,
    /// The window, in seconds.
    pub window_secs: u64,
    /// Counted in business hours only.
    pub business: bool,
    /// The warning point, in seconds from the start.
    pub warn_secs: Option<u64>,
    /// Applies only to matching cards.
    pub when: Option<Condition>,
    /// Where written.
    pub origin: Origin,
}

/// A routing table.
#[derive(Debug, Clone)]
pub struct Route {
    /// Name.
    pub name: String,
    /// What is looked up.
    pub by: Subject,
    /// Keys (normalised: phone prefixes as digits) to team names.
    pub entries: Vec<(String, String)>,
    /// The `else` team.
    pub otherwise: String,
}

impl Route {
    /// The team for a value. Phone numbers match by prefix, and the
    /// longest matching prefix wins (`+5511` beats `+55`); any other value
    /// must equal a key, ignoring case (`Rio` does not catch `Rio Branco`).
    pub fn lookup(&self, value: &str) -> &str {
        let found = if self.by_phone() {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            self.entries
                .iter()
                .filter(|(k, _)| digits.starts_with(k.as_str()))
                .max_by_key(|(k, _)| k.len())
        } else {
            let value = value.to_lowercase();
            self.entries.iter().find(|(k, _)| k.to_lowercase() == value)
        };
        found.map(|(_, t)| t.as_str()).unwrap_or(&self.otherwise)
    }

    /// Whether the table is keyed by phone prefixes.
    pub fn by_phone(&self) -> bool {
        matches!(&self.by, Subject::Contact(a) if a == "phone" || a == "wa_id")
    }
}

/// What a condition, a route or a `set` looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A field of the card.
    Field(String),
    /// The card's status.
    Status,
    /// The card's team.
    Team,
    /// The card's assignee (e-mail), or none.
    Assignee,
    /// The card's SLA state: ok, warning, breached, none.
    Sla,
    /// Who wrote last: team or customer.
    LastResponder,
    /// An attribute of the contact: name, phone, wa_id or any other.
    Contact(String),
    /// A part of the message that triggered the rule: text, type, from.
    Message(String),
    /// A property of the card: number.
    Card(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Field(n) => f.write_str(n),
            Subject::Status => f.write_str("status"),
            Subject::Team => f.write_str("team"),
            Subject::Assignee => f.write_str("assignee"),
            Subject::Sla => f.write_str("sla"),
            Subject::LastResponder => f.write_str("last_responder"),
            Subject::Contact(a) => write!(f, "contact.{a}"),
            Subject::Message(a) => write!(f, "message.{a}"),
            Subject::Card(a) => write!(f, "card.{a}"),
        }
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
    /// `in [...]`
    In,
    /// `not in [...]`
    NotIn,
    /// `~ "regex"`
    Matches,
}

impl Op {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::Matches => "~",
        }
    }
}

/// A checked condition.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Both.
    And(Box<Condition>, Box<Condition>),
    /// Either.
    Or(Box<Condition>, Box<Condition>),
    /// Not.
    Not(Box<Condition>),
    /// `subject op value`.
    Compare {
        /// What is looked at.
        subject: Subject,
        /// How.
        op: Op,
        /// Against what (a list for `in`).
        value: Operand,
    },
    /// Now is within the pipe's business hours.
    WithinHours,
    /// A rhai script that answers true or false.
    Script(Script),
}

/// The right side of a comparison.
#[derive(Debug, Clone)]
pub enum Operand {
    /// One value.
    Value(Value),
    /// `in [...]`
    List(Vec<Value>),
    /// `~ "..."`.
    Regex(Pattern),
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::And(a, b) => write!(f, "{} and {}", Paren(a), Paren(b)),
            Condition::Or(a, b) => write!(f, "{a} or {b}"),
            Condition::Not(a) => write!(f, "not {}", Paren(a)),
            Condition::Compare { subject, op, value } => {
                write!(f, "{subject} {} ", op.symbol())?;
                match value {
                    Operand::Value(Value::Text(t)) if t.contains(' ') || t.is_empty() => {
                        write!(f, "{t:?}")
                    }
                    Operand::Value(v) => write!(f, "{v}"),
                    Operand::List(vs) => {
                        let items: Vec<String> = vs.iter().map(ToString::to_string).collect();
                        write!(f, "[{}]", items.join(", "))
                    }
                    Operand::Regex(r) => write!(f, "{:?}", r.source()),
                }
            }
            Condition::WithinHours => f.write_str("within hours"),
            Condition::Script(s) => match &s.file {
                Some(file) => write!(f, "script({file:?})"),
                None => f.write_str("script { … }"),
            },
        }
    }
}

struct Paren<'a>(&'a Condition);
impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Condition::Or(..) => write!(f, "({})", self.0),
            c => write!(f, "{c}"),
        }
    }
}

/// A `~` pattern (case-insensitive). Its syntax is checked with the
/// workflow; it is compiled the first time it is used, so checking a file with
/// hundreds of patterns stays fast.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: Arc<str>,
    compiled: Arc<OnceLock<Option<regex::Regex>>>,
}

/// Patterns larger than this many compiled bytes are refused.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl Pattern {
    /// Checks a pattern; the error is the reason in words.
    pub fn new(source: &str) -> Result<Pattern, String> {
        let reason = |e: &dyn fmt::Display| {
            let text = e.to_string();
            text.lines()
                .rfind(|l| l.starts_with("error:"))
                .unwrap_or("it is not a valid pattern")
                .trim_start_matches("error: ")
                .to_string()
        };
        regex_syntax::ParserBuilder::new()
            .case_insensitive(true)
            .build()
            .parse(source)
            .map_err(|e| reason(&e))?;
        let pattern = Pattern {
            source: Arc::from(source),
            compiled: Arc::new(OnceLock::new()),
        };
        // Only long patterns can break the size limit: compile those now.
        if source.len() > 200 && pattern.regex().is_none() {
            return Err("it is too large".to_string());
        }
        Ok(pattern)
    }
    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The compiled regex.
    pub fn regex(&self) -> Option<&regex::Regex> {
        self.compiled
            .get_or_init(|| {
                regex::RegexBuilder::new(&self.source)
                    .case_insensitive(true)
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .build()
                    .ok()
            })
            .as_ref()
    }
    /// Whether the text matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex().is_some_and(|r| r.is_match(text))
    }
}

/// A compiled rhai script with where it came from.
#[derive(Debug, Clone)]
pub struct Script {
    /// The `.rhai` file, or `None` for inline code.
    pub file: Option<String>,
    /// Where the script's code starts (for error lines at run time).
    pub origin: Origin,
    /// The compiled code.
    pub compiled: CompiledScript,
}

/// A reply or note text: a minijinja template, checked to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// The template source.
    pub source: Arc<str>,
}

/// What starts a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A new card.
    CardCreated,
    /// A message from the customer.
    MessageReceived,
    /// A message from the team.
    MessageSent,
    /// A status change (to one status, or any).
    StatusChanged(Option<String>),
    /// A field change.
    FieldChanged(String),
    /// An assignment.
    CardAssigned,
    /// An SLA reached its warning point.
    SlaWarning(SlaKind),
    /// An SLA was breached.
    SlaBreached(SlaKind),
    /// No message either way for this long (seconds).
    Idle(u64),
    /// The customer-service window closes in this long (seconds).
    WindowClosing(u64),
}

/// A rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name (given, or `on TRIGGER at FILE:LINE`).
    pub name: String,
    /// Where written.
    pub origin: Origin,
    /// What starts it.
    pub trigger: Trigger,
    /// Its condition.
    pub condition: Option<Condition>,
    /// What it does.
    pub actions: Vec<Action>,
}

/// A scheduled rule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cron expression, normalised to six or seven fields.
    pub cron: String,
    /// The parsed schedule (evaluated in the pipe's time zone).
    pub schedule: cron::Schedule,
    /// Where written.
    pub origin: Origin,
    /// The cards it acts on; `None` runs once for the pipe.
    pub condition: Option<Condition>,
    /// What it does.
    pub actions: Vec<Action>,
}

/// A saved filter of the board.
#[derive(Debug, Clone)]
pub struct View {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Filter.
    pub filter: Option<Condition>,
    /// Sort key and whether descending.
    pub sort: Option<(SortKey, bool)>,
}

/// What a view sorts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    /// SLA due time.
    Due,
    /// Creation time.
    Created,
    /// Last change.
    Updated,
    /// Card number.
    Number,
    /// A field.
    Field(String),
}

/// How to pick an agent in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignMode {
    /// In turn.
    RoundRobin,
    /// Fewest open cards.
    LeastBusy,
}

/// Who an `assign` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignTarget {
    /// A team.
    Team(String),
    /// A routing table that gives a team.
    Route(String),
    /// One agent.
    Agent(String),
}

/// Who a `notify` goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// Every member of a team.
    Team(String),
    /// One agent.
    Agent(String),
    /// The managers of the card's pipe.
    Manager,
    /// The card's assignee.
    Assignee,
}

/// What `set` puts in a field.
#[derive(Debug, Clone)]
pub enum SetValue {
    /// A typed value.
    Value(Value),
    /// The value of something else (`contact.city`).
    Subject(Subject),
    /// What a script returns.
    Script(Script),
}

/// A checked action.
#[derive(Debug, Clone)]
pub enum Action {
    /// Assign the card.
    Assign {
        /// Team, route or agent.
        target: AssignTarget,
        /// How to pick within a team.
        mode: AssignMode,
        /// Only agents online and under capacity.
        available: bool,
        /// Prefer the agent who last served this contact.
        sticky: bool,
    },
    /// Remove the assignee.
    Unassign,
    /// Set a field.
    Set {
        /// Field name.
        field: String,
        /// The value.
        value: SetValue,
    },
    /// Move to a status.
    Move(String),
    /// Send a free-form reply.
    Reply(Text),
    /// Send an approved WhatsApp template.
    ReplyTemplate {
        /// Template name at Meta.
        name: String,
        /// Language code.
        language: String,
        /// Parameters, each a text template.
        params: Vec<Text>,
    },
    /// Add an internal note.
    Note(Text),
    /// Tell people.
    Notify {
        /// Who.
        to: NotifyTarget,
        /// What.
        text: Text,
    },
    /// POST the card as JSON to an address.
    Webhook(String),
}

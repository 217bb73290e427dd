//! What the engine knows between events: cards, contacts, agents, and the
//! small pieces of memory that must survive a restart (round-robin
//! positions, queues, card numbers). The server stores it; the engine only
//! reads and changes it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use switchboard_lang::model::SlaKind;
use switchboard_lang::model::Value;

/// A card's id: its index in [`State::cards`].
pub type CardId = usize;

/// Everything the engine works on.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// All cards, by id.
    pub cards: Vec<Card>,
    /// Contacts by WhatsApp id.
    pub contacts: BTreeMap<String, Contact>,
    /// Agents by e-mail.
    pub agents: BTreeMap<String, Agent>,
    /// The last card number given in each pipe.
    pub last_number: BTreeMap<String, u64>,
    /// Where round robin goes next, per (pipe, team): an index into the team.
    pub round_robin: BTreeMap<(String, String), usize>,
    /// Cards waiting for an agent, per (pipe, team), oldest first.
    pub queues: BTreeMap<(String, String), VecDeque<CardId>>,
    /// Open cards per agent (kept in step with the cards).
    pub load: BTreeMap<String, u32>,
    /// Everything that will happen at a time of its own, soonest first.
    /// Finding the next one never scans the cards.
    pub timers: BTreeSet<Timer>,
    /// The latest time the engine has seen (schedules are planned from it).
    pub now: Option<DateTime<Utc>>,
    /// Each contact's cards, oldest first, so finding a contact's open card
    /// never scans all cards (kept by the engine when it opens a card).
    pub by_contact: BTreeMap<String, Vec<CardId>>,
}

/// Something due at an instant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Timer {
    /// When.
    pub at: DateTime<Utc>,
    /// The card.
    pub card: CardId,
    /// What.
    pub kind: TimerKind,
}

/// The kinds of timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// An SLA clock reaches its warning point.
    SlaWarning(SlaKind),
    /// An SLA clock runs out.
    SlaBreach(SlaKind),
    /// No message either way for this many seconds.
    Idle(u64),
    /// The contact's 24-hour window closes in this many seconds.
    WindowClosing(u64),
    /// A pipe's `every` schedule runs (the timer's card is [`NO_CARD`]).
    Schedule {
        /// The pipe's index in the workflow.
        pipe: usize,
        /// The schedule's index in the pipe.
        index: usize,
    },
}

/// The card of a timer that belongs to a pipe, not a card.
pub const NO_CARD: CardId = usize::MAX;

/// One SLA clock of a card.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clock {
    /// Which.
    pub kind: SlaKind,
    /// Seconds counted before the current run (paused time does not count).
    pub spent: u64,
    /// Running since, or `None` while paused.
    pub running_since: Option<DateTime<Utc>>,
    /// When it warns, while running.
    pub warn_at: Option<DateTime<Utc>>,
    /// When it breaches, while running.
    pub due_at: Option<DateTime<Utc>>,
    /// `ok`, `warning` or `breached` while it counts; `stopped` or
    /// `breached_stopped` once the team answered or the card is done.
    pub state: &'static str,
}

impl State {
    /// The contact's open card (not done or closed) in a pipe.
    pub fn open_card(&self, pipe: &str, wa_id: &str) -> Option<CardId> {
        self.by_contact
            .get(wa_id)?
            .iter()
            .rev()
            .copied()
            .find(|&id| self.cards.get(id).is_some_and(|c| c.pipe == pipe && c.open))
    }
    /// A card by its number in a pipe.
    pub fn card_by_number(&self, pipe: &str, number: u64) -> Option<CardId> {
        self.cards
            .iter()
            .position(|c| c.pipe == pipe && c.number == number)
    }
    /// Open cards assigned to an agent.
    pub fn load_of(&self, agent: &str) -> u32 {
        self.load.get(agent).copied().unwrap_or(0)
    }
}

/// One conversation on a pipe's board.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// Index in the state.
    pub id: CardId,
    /// The pipe it is on.
    pub pipe: String,
    /// Its number in the pipe, from 1.
    pub number: u64,
    /// The contact's WhatsApp id.
    pub contact: String,
    /// Current status.
    pub status: String,
    /// Whether the status is open work (not done or closed).
    pub open: bool,
    /// The agent working on it.
    pub assignee: Option<String>,
    /// The team it belongs to.
    pub team: Option<String>,
    /// Field values.
    pub fields: BTreeMap<String, FieldValue>,
    /// Every message in and out.
    pub messages: Vec<Message>,
    /// Every change with its cause.
    pub history: Vec<HistoryEntry>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Who wrote last.
    pub last_responder: Option<Responder>,
    /// A free-form reply was refused: only a template can reach the contact.
    pub template_needed: bool,
    /// The SLA clock that matters now, if any.
    pub sla: Option<SlaView>,
    /// The SLA clocks that are running, paused or ran out.
    pub clocks: Vec<Clock>,
    /// When the last message (either way) was.
    pub last_message_at: Option<DateTime<Utc>>,
    /// When a person of the team first wrote (rules' replies do not count).
    pub first_reply_at: Option<DateTime<Utc>>,
    /// When the card last left open work (done or closed); none while open.
    pub closed_at: Option<DateTime<Utc>>,
    /// The card's idle and window-closing timers (also in [`State::timers`]).
    pub timers: Vec<Timer>,
}

/// The SLA clock shown on a card: which kind, its state and due time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlaView {
    /// `first_response`, `next_response` or `resolution`.
    pub kind: String,
    /// `ok`, `warning` or `breached`.
    pub state: String,
    /// When it breaches (none while paused).
    pub due_at: Option<DateTime<Utc>>,
}

/// A field value as stored on a card.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// Text, choice values, agents.
    Text(String),
    /// Numbers.
    Number(f64),
    /// Yes or no.
    Bool(bool),
    /// Dates, as `YYYY-MM-DD`.
    Date(String),
}

impl Serialize for FieldValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Text(t) | FieldValue::Date(t) => s.serialize_str(t),
            // Whole numbers are written as such: `120`, not `120.0`.
            FieldValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
                s.serialize_i64(*n as i64)
            }
            FieldValue::Number(n) => s.serialize_f64(*n),
            FieldValue::Bool(b) => s.serialize_bool(*b),
        }
    }
}

impl FieldValue {
    /// From a checked value (`None` for `none`).
    pub fn from_value(v: &Value) -> Option<FieldValue> {
        match v {
            Value::Text(t) => Some(FieldValue::Text(t.clone())),
            Value::Number(n) => Some(FieldValue::Number(*n)),
            Value::Bool(b) => Some(FieldValue::Bool(*b)),
            Value::Date(d) => Some(FieldValue::Date(d.to_string())),
            Value::None => None,
        }
    }
    /// As a checked value, for comparisons.
    pub fn to_value(&self) -> Value {
        match self {
            FieldValue::Text(t) => Value::Text(t.clone()),
            FieldValue::Number(n) => Value::Number(*n),
            FieldValue::Bool(b) => Value::Bool(*b),
            FieldValue::Date(d) => d
                .parse()
                .map(Value::Date)
                .unwrap_or_else(|_| Value::Text(d.clone())),
        }
    }
}

/// Who wrote last on a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    /// We answered last (green).
    Team,
    /// The customer is waiting (yellow).
    Customer,
}

/// A message on a card.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// WhatsApp's id (`wamid…`), or ours for outbound ones.
    pub id: String,
    /// In from the customer, or out from the team.
    pub direction: Direction,
    /// WhatsApp type: text, image, button …
    #[serde(rename = "type")]
    pub kind: String,
    /// The text, where there is one.
    pub text: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// Delivery status of outbound messages.
    pub status: Option<String>,
    /// The agent who wrote it, or the rule.
    pub author: Option<String>,
}

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the customer.
    In,
    /// From the team.
    Out,
}

/// A contact: one WhatsApp user.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Contact {
    /// WhatsApp id (digits).
    pub wa_id: String,
    /// Profile name.
    pub name: String,
    /// Phone as `+digits`.
    pub phone: String,
    /// Other attributes (city, tier …).
    pub attributes: BTreeMap<String, String>,
    /// When the 24-hour customer-service window closes.
    pub window_closes_at: Option<DateTime<Utc>>,
    /// The agent who last served this contact, per pipe (for `sticky`).
    pub last_agent: BTreeMap<String, String>,
}

/// An agent's availability.
#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    /// E-mail.
    pub email: String,
    /// Online (else away).
    pub online: bool,
    /// How many open cards they take at most.
    pub capacity: u32,
}

/// One change on a card, with why.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened, in words.
    pub what: String,
    /// Why.
    pub cause: Cause,
}

/// Why something happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "lowercase")]
pub enum Cause {
    /// A rule fired.
    Rule {
        /// Its name.
        name: String,
        /// `file:line`.
        at: String,
    },
    /// An agent (or an API call acting as one).
    Agent {
        /// Their e-mail.
        email: String,
    },
    /// The customer wrote.
    Customer,
    /// A clock: an SLA timer, an idle or window-closing timer.
    Timer {
        /// Which, in words.
        what: String,
    },
    /// The engine itself (queues, limits).
    Engine {
        /// What in the engine.
        reason: String,
    },
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Rule { name, at } => write!(f, "rule `{name}` at {at}"),
            Cause::Agent { email } => write!(f, "{email}"),
            Cause::Customer => f.write_str("the customer"),
            Cause::Timer { what } => f.write_str(what),
            Cause::Engine { reason } => f.write_str(reason),
        }
    }
}

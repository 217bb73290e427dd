//! What comes in (events) and what goes out (effects and the rule log).

use crate::state::{CardId, Cause};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Something that happened outside the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A customer wrote to one of the pipes' numbers.
    Message(Inbound),
    /// An agent went online or away, or changed capacity.
    Agent {
        /// Their e-mail.
        email: String,
        /// Online (true) or away (false), when it changed.
        online: Option<bool>,
        /// New capacity, when it changed.
        capacity: Option<u32>,
    },
    /// An agent replied on a card.
    Reply {
        /// The card.
        card: CardId,
        /// Who.
        agent: String,
        /// Free text, or an approved template.
        body: ReplyBody,
    },
    /// An agent moved a card.
    Move {
        /// The card.
        card: CardId,
        /// Who.
        agent: String,
        /// Where to.
        status: String,
    },
    /// An agent set fields.
    Set {
        /// The card.
        card: CardId,
        /// Who.
        agent: String,
        /// Field name to value (JSON, checked against the field's type).
        fields: BTreeMap<String, serde_json::Value>,
    },
    /// An agent assigned a card to someone, or to a team.
    Assign {
        /// The card.
        card: CardId,
        /// Who asks.
        agent: String,
        /// An agent's e-mail or a team name.
        to: AssignTo,
    },
    /// WhatsApp refused a message we sent, for good (reported by the sender).
    Undeliverable {
        /// The card.
        card: CardId,
        /// The card message that did not go.
        message: String,
        /// Why, in words.
        reason: String,
        /// WhatsApp says the 24-hour window is closed (error 131047),
        /// whatever our clock said: only a template can go now.
        window_closed: bool,
    },
}

/// Who an agent assigns a card to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AssignTo {
    /// One agent.
    Agent(String),
    /// A team (its assignment rules pick the agent).
    Team(String),
}

/// A reply's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyBody {
    /// Free-form text (only inside the 24-hour window).
    Text(String),
    /// An approved WhatsApp template.
    Template {
        /// Its name at Meta.
        name: String,
        /// Language code.
        language: String,
        /// Parameters.
        params: Vec<String>,
    },
}

/// An inbound WhatsApp message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inbound {
    /// WhatsApp's message id.
    pub id: String,
    /// The sender's WhatsApp id (digits).
    pub from: String,
    /// The sender's profile name.
    pub name: String,
    /// The number written to (digits or as people write it).
    pub to: String,
    /// The WhatsApp type: text, image, button …
    pub kind: String,
    /// The text, where there is one.
    pub text: Option<String>,
}

/// What the engine decided, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    /// The card it is about.
    pub card: Option<CardId>,
    /// What.
    #[serde(flatten)]
    pub kind: EffectKind,
    /// Why.
    pub cause: Cause,
}

/// The kinds of effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum EffectKind {
    /// A new card was opened.
    CardOpened {
        /// Its number in the pipe.
        number: u64,
        /// Its pipe.
        pipe: String,
    },
    /// A message was kept on the card.
    MessageKept {
        /// WhatsApp's id.
        id: String,
    },
    /// The card moved.
    Moved {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Something asked for was refused.
    Refused {
        /// What was asked.
        what: String,
        /// Why not, in one sentence.
        reason: String,
    },
    /// The card was assigned.
    Assigned {
        /// To whom.
        agent: String,
        /// In which team, when a team was asked for.
        team: Option<String>,
        /// Everyone considered, and why each was or was not chosen.
        candidates: Vec<Candidate>,
    },
    /// Nobody could take the card now: it waits in the team's queue.
    Queued {
        /// The team.
        team: String,
        /// Why nobody could take it.
        candidates: Vec<Candidate>,
    },
    /// The assignee was removed.
    Unassigned,
    /// A field changed.
    FieldSet {
        /// Field.
        field: String,
        /// Old value (JSON null for none).
        from: serde_json::Value,
        /// New value.
        to: serde_json::Value,
    },
    /// A message to send to the contact.
    Send {
        /// The card message it is (its id on the card).
        message: String,
        /// The WhatsApp id to send to.
        to: String,
        /// What.
        text: Option<String>,
        /// Or which template.
        template: Option<String>,
        /// Template language.
        language: Option<String>,
        /// Template parameters.
        params: Vec<String>,
    },
    /// An internal note on the card.
    Note {
        /// The note.
        text: String,
    },
    /// Tell people.
    Notify {
        /// Who, as e-mails.
        to: Vec<String>,
        /// What.
        text: String,
    },
    /// POST the card as JSON.
    Webhook {
        /// Where.
        url: String,
    },
    /// A script or a text failed; its rule did not fire (or its text was not sent).
    Failed {
        /// What failed, with the line where known.
        what: String,
    },
    /// An SLA clock reached its warning point or ran out.
    Sla {
        /// Which clock.
        kind: String,
        /// `warning` or `breached`.
        state: String,
    },
    /// A chain of rules was cut off.
    ChainCut {
        /// How deep it went.
        depth: usize,
    },
}

/// One agent considered for an assignment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The agent.
    pub agent: String,
    /// Whether they were chosen.
    pub chosen: bool,
    /// Why (not).
    pub why: String,
}

/// One rule that was looked at: fired, or not and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The card.
    pub card: Option<CardId>,
    /// The rule's name.
    pub rule: String,
    /// `file:line`.
    pub origin: String,
    /// Whether it fired.
    pub fired: bool,
    /// Why not (the part of the condition that was false), or what started it.
    pub reason: String,
}

/// What one event led to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Effects in order.
    pub effects: Vec<Effect>,
    /// Rules looked at, in order.
    pub log: Vec<LogEntry>,
}

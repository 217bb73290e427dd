//! The rows the store reads and writes.

use crate::{Result, Val};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A webhook body to store.
#[derive(Debug, Clone)]
pub struct InboxItem {
    /// The raw bytes, exactly as received.
    pub body: Vec<u8>,
    /// When it arrived (ms).
    pub received_at: i64,
}

/// A stored webhook body.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// Its id (arrival order).
    pub id: i64,
    /// The raw bytes.
    pub body: Vec<u8>,
    /// When it arrived (ms).
    pub received_at: i64,
}

impl InboxRow {
    /// From a row with `id`, `body` and `received_at`.
    pub(crate) fn from_row(r: &sqlx::any::AnyRow) -> crate::Result<InboxRow> {
        use sqlx::Row;
        Ok(InboxRow {
            id: r.try_get("id")?,
            body: r.try_get("body")?,
            received_at: r.try_get("received_at")?,
        })
    }
}

/// One input of the engine, as logged.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Its place in the log.
    pub seq: i64,
    /// When (ms).
    pub at: i64,
    /// The event as JSON.
    pub event: String,
}

/// A card as the engine last left it.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRow {
    /// The engine's card id.
    pub id: i64,
    /// Its pipe.
    pub pipe: String,
    /// Its number in the pipe.
    pub number: i64,
    /// The contact's WhatsApp id.
    pub contact: String,
    /// Its status.
    pub status: String,
    /// Open work (not done or closed).
    pub open: bool,
    /// Its agent.
    pub assignee: Option<String>,
    /// Its team.
    pub team: Option<String>,
    /// `ok`, `warning`, `breached` or `none`.
    pub sla_state: String,
    /// When the SLA that matters runs out (ms).
    pub sla_due_at: Option<i64>,
    /// `team` or `customer`.
    pub last_responder: Option<String>,
    /// Only a template can reach the contact.
    pub template_needed: bool,
    /// The last message, on one line.
    pub preview: String,
    /// The card's JSON (api.md's shape).
    pub view: String,
    /// Opened (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// When a person of the team first wrote (ms).
    pub first_reply_at: Option<i64>,
    /// When it left open work (ms); none while open.
    pub closed_at: Option<i64>,
}

impl CardRow {
    pub(crate) fn vals(self) -> Vec<Val> {
        vec![
            Val::Int(self.id),
            Val::Text(self.pipe),
            Val::Int(self.number),
            Val::Text(self.contact),
            Val::Text(self.status),
            Val::Int(self.open as i64),
            Val::OptText(self.assignee),
            Val::OptText(self.team),
            Val::Text(self.sla_state),
            Val::OptInt(self.sla_due_at),
            Val::OptText(self.last_responder),
            Val::Int(self.template_needed as i64),
            Val::Text(self.preview),
            Val::Text(self.view),
            Val::Int(self.created_at),
            Val::Int(self.updated_at),
            Val::OptInt(self.first_reply_at),
            Val::OptInt(self.closed_at),
        ]
    }

    pub(crate) fn from_row(r: &AnyRow) -> Result<CardRow> {
        Ok(CardRow {
            id: r.try_get("id")?,
            pipe: r.try_get("pipe")?,
            number: r.try_get("number")?,
            contact: r.try_get("contact")?,
            status: r.try_get("status")?,
            open: r.try_get::<i64, _>("open")? != 0,
            assignee: r.try_get("assignee")?,
            team: r.try_get("team")?,
            sla_state: r.try_get("sla_state")?,
            sla_due_at: r.try_get("sla_due_at")?,
            last_responder: r.try_get("last_responder")?,
            template_needed: r.try_get::<i64, _>("template_needed")? != 0,
            preview: r.try_get("preview")?,
            view: r.try_get("view")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            first_reply_at: r.try_get("first_reply_at")?,
            closed_at: r.try_get("closed_at")?,
        })
    }
}

/// Which cards to list.
#[derive(Debug, Clone, Default)]
pub struct CardFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this agent's.
    pub assignee: Option<String>,
    /// Only this SLA state.
    pub sla: Option<String>,
    /// Only cards nobody is assigned to.
    pub unassigned: bool,
    /// Only these cards (a search's result).
    pub ids: Option<Vec<i64>>,
    /// After this card id (the cursor).
    pub after: Option<i64>,
}

/// A message to record on a card.
#[derive(Debug, Clone)]
pub struct MessageRow {
    /// The card.
    pub card_id: i64,
    /// The engine's id of the message.
    pub key: String,
    /// WhatsApp's id, once known.
    pub wamid: Option<String>,
    /// `in` or `out`.
    pub direction: String,
    /// The WhatsApp type.
    pub kind: String,
    /// Its text, where there is one.
    pub text: Option<String>,
    /// Who wrote it (agent, rule).
    pub author: Option<String>,
    /// Delivery status of ours.
    pub status: Option<String>,
    /// When (ms).
    pub at: i64,
    /// WhatsApp's timestamp (s), for inbound ones.
    pub wa_timestamp: Option<i64>,
    /// The raw payload as JSON.
    pub raw: Option<String>,
}

impl MessageRow {
    pub(crate) fn vals(self) -> Vec<Val> {
        vec![
            Val::Int(self.card_id),
            Val::Text(self.key),
            Val::OptText(self.wamid),
            Val::Text(self.direction),
            Val::Text(self.kind),
            Val::OptText(self.text),
            Val::OptText(self.author),
            Val::OptText(self.status),
            Val::Int(self.at),
            Val::OptInt(self.wa_timestamp),
            Val::OptText(self.raw),
        ]
    }
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Row id.
    pub id: i64,
    /// The engine's id.
    pub key: String,
    /// WhatsApp's id.
    pub wamid: Option<String>,
    /// `in` or `out`.
    pub direction: String,
    /// The WhatsApp type.
    pub kind: String,
    /// Its text.
    pub text: Option<String>,
    /// Who wrote it.
    pub author: Option<String>,
    /// Delivery status.
    pub status: Option<String>,
    /// Why it failed.
    pub status_reason: Option<String>,
    /// When (ms).
    pub at: i64,
    /// Raw payload (JSON).
    pub raw: Option<String>,
}

/// One change on a card.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// The card.
    pub card_id: i64,
    /// When (ms).
    pub at: i64,
    /// What happened.
    pub what: String,
    /// Why (JSON of the engine's cause).
    pub cause: String,
}

/// A contact to create or refresh.
#[derive(Debug, Clone)]
pub struct ContactRow {
    /// WhatsApp id.
    pub wa_id: String,
    /// Business-scoped user id.
    pub user_id: Option<String>,
    /// WhatsApp username.
    pub username: Option<String>,
    /// Profile name.
    pub name: String,
    /// Phone as `+digits`.
    pub phone: String,
    /// Now (ms).
    pub updated_at: i64,
}

impl ContactRow {
    pub(crate) fn vals(self) -> Vec<Val> {
        vec![
            Val::Text(self.wa_id),
            Val::OptText(self.user_id),
            Val::OptText(self.username),
            Val::Text(self.name),
            Val::Text(self.phone),
            Val::Int(self.updated_at),
        ]
    }
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct OutboxNew {
    /// The card it belongs to.
    pub card_id: i64,
    /// The card message it is.
    pub message_key: String,
    /// The business number that sends it.
    pub phone_number_id: String,
    /// The contact.
    pub recipient: String,
    /// The send request (JSON).
    pub request: String,
    /// Queued at (ms).
    pub at: i64,
}

/// A claimed outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Row id (also sent as `biz_opaque_callback_data`).
    pub id: i64,
    /// The card.
    pub card_id: i64,
    /// The card message.
    pub message_key: String,
    /// The sending number.
    pub phone_number_id: String,
    /// The contact.
    pub recipient: String,
    /// The send request (JSON).
    pub request: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// An earlier attempt may have reached Meta.
    pub uncertain: bool,
}

/// Text to find a card by.
#[derive(Debug, Clone)]
pub struct SearchRow {
    /// The card.
    pub card_id: i64,
    /// Its pipe.
    pub pipe: String,
    /// Words: a message, the contact's name and phone, field values.
    pub body: String,
}

/// Something an operator must see.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// When (ms).
    pub at: i64,
    /// What kind (`whatsapp_error`, `status_anomaly` …).
    pub kind: String,
    /// In words.
    pub detail: String,
}

/// A delivery status as received.
#[derive(Debug, Clone)]
pub struct StatusRow {
    /// Our message's wamid.
    pub wamid: String,
    /// `sent`, `delivered`, `read`, `played`, `failed` or another word.
    pub status: String,
    /// When (ms).
    pub at: i64,
    /// Why it failed.
    pub reason: Option<String>,
    /// The outbox id we sent as `biz_opaque_callback_data`.
    pub callback: Option<String>,
}

/// What a status did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The message's status moved up.
    Applied,
    /// The message already had this status or a later one.
    Stale,
    /// The status was seen before.
    Duplicate,
    /// No message has this wamid yet: kept until the send is recorded.
    Parked,
}

/// Everything one processing batch writes, in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Engine events `(at, json)`, in order.
    pub events: Vec<(i64, String)>,
    /// Cards changed.
    pub cards: Vec<CardRow>,
    /// New messages.
    pub messages: Vec<MessageRow>,
    /// New history entries.
    pub history: Vec<HistoryRow>,
    /// Contacts seen.
    pub contacts: Vec<ContactRow>,
    /// Messages to send.
    pub outbox: Vec<OutboxNew>,
    /// Text to index.
    pub search: Vec<SearchRow>,
    /// Alerts.
    pub alerts: Vec<AlertRow>,
    /// Inbox rows consumed, with a note where something was wrong: the
    /// oldest waiting ones, as [`crate::Store::pending_inbox`] gave them (on
    /// SQLite the engine's cursor moves to the last, so a body left out
    /// before it would count as processed).
    pub inbox_done: Vec<(i64, Option<String>)>,
    /// Everything in the batch can be done again from inputs already
    /// stored for good (webhook bodies it consumes, timers that fall due
    /// again): its commit need not wait for the disk ([`crate::Store::commit`]).
    pub redoable: bool,
}

/// A pipe's figures for the dashboard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipeStats {
    /// Open work, per team (`None`: cards no team has yet), by team name.
    pub teams: Vec<TeamWork>,
    /// Cards opened since the date asked that have an SLA clock.
    pub with_sla: i64,
    /// Of those, the ones whose SLA ran out.
    pub breached: i64,
    /// Cards opened per day (day number, count), since the date asked.
    pub opened_per_day: Vec<(i64, i64)>,
    /// Cards resolved (done or closed) per day, since the date asked.
    pub resolved_per_day: Vec<(i64, i64)>,
    /// Milliseconds from opening to the team's first reply, per card opened
    /// since (the 10,000 newest at most).
    pub first_responses: Vec<i64>,
    /// Milliseconds from opening to resolution, per card resolved since (the
    /// 10,000 newest at most).
    pub resolutions: Vec<i64>,
}

impl PipeStats {
    /// The open work of the whole pipe.
    pub fn total(&self) -> TeamWork {
        self.teams.iter().fold(TeamWork::default(), |mut a, t| {
            a.open += t.open;
            a.in_progress += t.in_progress;
            a.waiting += t.waiting;
            a.overdue += t.overdue;
            a
        })
    }
}

/// The open work of one team of a pipe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamWork {
    /// The team (`None`: not given to a team yet).
    pub team: Option<String>,
    /// Open cards.
    pub open: i64,
    /// Open cards someone has taken.
    pub in_progress: i64,
    /// Open cards whose customer wrote last.
    pub waiting: i64,
    /// Open cards whose SLA ran out.
    pub overdue: i64,
}

impl TeamWork {
    /// Open cards nobody has taken.
    pub fn unassigned(&self) -> i64 {
        self.open - self.in_progress
    }
}

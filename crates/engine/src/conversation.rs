//! Scripted conversations: the JSON-lines files that `switchboard simulate`
//! and the workflow tests play against the engine (api.md, "Scripted
//! conversations"). This module only turns text into [`Scripted`] items;
//! the caller reads the file and drives the clock.
//!
//! One JSON object per line, in time order, each with an `at` (RFC 3339
//! with offset) and one kind of event:
//!
//! ```text
//! {"at":"2026-11-23T09:00:00-03:00","message":{"from":"5511987650001","name":"Maria","to":"+55 11 4000-1000","text":"Oi"}}
//! {"at":"2026-11-23T09:00:00-03:00","agent":"ana@acme.com","online":true,"capacity":3}
//! {"at":"2026-11-23T09:04:00-03:00","reply":{"card":1,"agent":"ana@acme.com","text":"Olá!"}}
//! {"at":"2026-11-23T09:04:00-03:00","reply":{"card":1,"agent":"ana@acme.com","template":"csat","language":"pt_BR","params":["Maria"]}}
//! {"at":"2026-11-23T09:05:00-03:00","move":{"card":1,"agent":"ana@acme.com","status":"waiting"}}
//! {"at":"2026-11-23T09:06:00-03:00","set":{"card":1,"agent":"ana@acme.com","fields":{"order_id":"8812"}}}
//! {"at":"2026-11-23T09:06:00-03:00","assign":{"card":1,"agent":"ana@acme.com","team":"billing"}}
//! {"at":"2026-11-23T09:07:00-03:00","status":{"card":1,"message":-1,"status":"read"}}
//! {"at":"2026-11-24T18:00:00-03:00","until":true}
//! ```
//!
//! Card numbers count the cards in order of creation, from 1, across all
//! pipes: card `n` is [`CardId`] `n - 1`. Blank lines and lines starting
//! with `//` are skipped. Every mistake of every line is reported, each as
//! one sentence with its line number.

use crate::event::{AssignTo, Event, Inbound, ReplyBody};
use crate::state::CardId;
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use switchboard_lang::diagnostic::did_you_mean;

/// The kinds of line, as their key is written.
pub const KINDS: &[&str] = &[
    "message", "agent", "reply", "move", "set", "assign", "status", "until", "expect",
];

/// The delivery statuses WhatsApp reports for a sent message.
pub const DELIVERY_STATUSES: &[&str] = &["sent", "delivered", "read", "failed"];

/// One line of a scripted conversation.
#[derive(Debug, Clone)]
pub struct Scripted {
    /// Its 1-based line number in the file.
    pub line: usize,
    /// When it happens.
    pub at: DateTime<Utc>,
    /// What happens.
    pub what: ScriptedKind,
    /// The line's object as written; a message's full WhatsApp payload is
    /// `raw["message"]`.
    pub raw: Value,
}

/// What a scripted line does.
#[derive(Debug, Clone)]
pub enum ScriptedKind {
    /// An event for [`crate::Engine::step`].
    Event(Event),
    /// WhatsApp reports the delivery status of a message the team sent.
    /// The engine has no event for it: the caller records it.
    Status {
        /// The card.
        card: CardId,
        /// Which of the card's sent messages: from 1 in order, or counted
        /// from the end when negative (`-1` is the last). Never 0.
        message: i64,
        /// One of [`DELIVERY_STATUSES`].
        status: String,
    },
    /// Nothing happens; the clock only moves on (timers fall due).
    Until,
    /// A workflow test's expectation about a card at this time.
    Expect {
        /// The card.
        card: CardId,
        /// What must be true of it.
        checks: Vec<Check>,
    },
}

/// One thing a workflow test expects of a card.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Its status.
    Status(String),
    /// Its assignee (`null`: nobody).
    Assignee(Option<String>),
    /// Its team (`null`: none).
    Team(Option<String>),
    /// A field's value (`null`: empty).
    Field(String, Value),
    /// Its SLA state: ok, warning, breached or none.
    Sla(String),
    /// Who wrote last: team or customer (`null`: nobody yet).
    LastResponder(Option<String>),
    /// Some message sent to the contact contains this text.
    Replied(String),
    /// Whether only a template can reach the contact now.
    TemplateNeeded(bool),
    /// Some line of its history contains this text.
    History(String),
}

/// The keys an `expect` line may check.
pub const EXPECT_KEYS: &[&str] = &[
    "card",
    "status",
    "assignee",
    "team",
    "fields",
    "sla",
    "last_responder",
    "replied",
    "template_needed",
    "history",
];

impl Check {
    /// Why the card does not meet the expectation, or `None` when it does.
    pub fn verify(&self, state: &crate::State, card: CardId) -> Option<String> {
        let c = state.cards.get(card)?;
        let opt = |v: &Option<String>| v.clone().map_or("nobody".to_string(), |s| format!("`{s}`"));
        match self {
            Check::Status(s) => {
                (&c.status != s).then(|| format!("status `{s}` expected, found `{}`", c.status))
            }
            Check::Assignee(a) => (&c.assignee != a)
                .then(|| format!("assignee {} expected, found {}", opt(a), opt(&c.assignee))),
            Check::Team(t) => {
                (&c.team != t).then(|| format!("team {} expected, found {}", opt(t), opt(&c.team)))
            }
            Check::Field(name, want) => {
                let got = c
                    .fields
                    .get(name)
                    .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
                    .unwrap_or(Value::Null);
                let same = match (&got, want) {
                    (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                    _ => &got == want,
                };
                (!same).then(|| format!("field `{name}` = {want} expected, found {got}"))
            }
            Check::Sla(want) => {
                let got = c.sla.as_ref().map_or("none", |v| v.state.as_str());
                (got != want).then(|| format!("SLA `{want}` expected, found `{got}`"))
            }
            Check::LastResponder(want) => {
                let got = c.last_responder.map(|r| match r {
                    crate::state::Responder::Team => "team".to_string(),
                    crate::state::Responder::Customer => "customer".to_string(),
                });
                (&got != want)
                    .then(|| format!("last responder {} expected, found {}", opt(want), opt(&got)))
            }
            Check::Replied(text) => {
                let sent = c.messages.iter().any(|m| {
                    m.direction == crate::state::Direction::Out
                        && m.text.as_deref().is_some_and(|t| t.contains(text.as_str()))
                });
                (!sent).then(|| format!("a reply containing \"{text}\" expected, none was sent"))
            }
            Check::TemplateNeeded(want) => (c.template_needed != *want).then(|| {
                format!(
                    "template_needed {want} expected, found {}",
                    c.template_needed
                )
            }),
            Check::History(text) => {
                let found = c.history.iter().any(|h| h.what.contains(text.as_str()));
                (!found)
                    .then(|| format!("a history line containing \"{text}\" expected, none found"))
            }
        }
    }
}

impl Scripted {
    /// The card the line names, for lines about an existing card.
    pub fn card(&self) -> Option<CardId> {
        match &self.what {
            ScriptedKind::Event(
                Event::Reply { card, .. }
                | Event::Move { card, .. }
                | Event::Set { card, .. }
                | Event::Assign { card, .. },
            )
            | ScriptedKind::Status { card, .. }
            | ScriptedKind::Expect { card, .. } => Some(*card),
            _ => None,
        }
    }

    /// The line's kind, as written (`message`, `reply`, …).
    pub fn kind(&self) -> &'static str {
        match &self.what {
            ScriptedKind::Event(Event::Message(_)) => "message",
            ScriptedKind::Event(Event::Agent { .. }) => "agent",
            ScriptedKind::Event(Event::Reply { .. }) => "reply",
            ScriptedKind::Event(Event::Move { .. }) => "move",
            ScriptedKind::Event(Event::Set { .. }) => "set",
            ScriptedKind::Event(Event::Assign { .. }) => "assign",
            ScriptedKind::Event(Event::Undeliverable { .. }) => "undeliverable",
            ScriptedKind::Status { .. } => "status",
            ScriptedKind::Until => "until",
            ScriptedKind::Expect { .. } => "expect",
        }
    }
}

/// A mistake on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong, in one sentence.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// Parses a whole scripted conversation, or returns every mistake in it.
pub fn parse(text: &str) -> Result<Vec<Scripted>, Vec<LineError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    // The last valid time, as written, with its line: lines must not go back.
    let mut previous: Option<DateTime<FixedOffset>> = None;
    for (index, source) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = source.trim();
        if trimmed.is_empty() || trimmed.starts_with("//") {
            continue;
        }
        let mut p = LineParser {
            line,
            errors: Vec::new(),
        };
        if let Some(item) = p.line(trimmed, &mut previous) {
            if p.errors.is_empty() {
                out.push(item);
            }
        }
        errors.append(&mut p.errors);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// What a field must hold, for messages.
#[derive(Clone, Copy)]
enum Want {
    Text,
    Email,
    Card,
    Bool,
    Count,
}

impl Want {
    fn describe(self) -> &'static str {
        match self {
            Want::Text => "a text",
            Want::Email => "an e-mail",
            Want::Card => "a card number, from 1",
            Want::Bool => "true or false",
            Want::Count => "a whole number",
        }
    }
}

/// Parses one line, collecting its mistakes.
struct LineParser {
    line: usize,
    errors: Vec<LineError>,
}

impl LineParser {
    fn error(&mut self, message: impl Into<String>) {
        self.errors.push(LineError {
            line: self.line,
            message: message.into(),
        });
    }

    fn line(
        &mut self,
        text: &str,
        previous: &mut Option<DateTime<FixedOffset>>,
    ) -> Option<Scripted> {
        let raw: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) if !text.starts_with('{') => {
                self.error(
                    "invalid JSON: a line must be one JSON object, starting with `{`, like {\"at\":\"2026-11-23T09:00:00-03:00\",\"until\":true}",
                );
                return None;
            }
            Err(e) => {
                self.error(json_error(&e));
                return None;
            }
        };
        let Some(obj) = raw.as_object() else {
            self.error(format!(
                "a line must be one JSON object like {{\"at\":\"2026-11-23T09:00:00-03:00\",\"message\":{{…}}}}, not {}",
                json_kind(&raw)
            ));
            return None;
        };
        let at = self.at(obj, previous);
        let kind = self.kind(obj)?;
        let what = match kind {
            "message" => self.message(&obj[kind]),
            "agent" => self.agent(obj),
            "until" => self.until(&obj[kind]),
            "expect" => self.expect(&obj[kind]),
            _ => self.card_event(kind, &obj[kind]),
        };
        Some(Scripted {
            line: self.line,
            at: at?,
            what: what?,
            raw,
        })
    }

    /// The line's `at`, checked against the previous line's.
    fn at(
        &mut self,
        obj: &Map<String, Value>,
        previous: &mut Option<DateTime<FixedOffset>>,
    ) -> Option<DateTime<Utc>> {
        let example = "\"2026-11-23T09:00:00-03:00\"";
        let written = match obj.get("at") {
            None => {
                self.error(format!(
                    "`at` is missing: give the time as RFC 3339 with offset, like {example}"
                ));
                return None;
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                self.error(format!(
                    "`at` must be a time in quotes, like {example}, not {}",
                    json_kind(other)
                ));
                return None;
            }
        };
        let at = match DateTime::parse_from_rfc3339(written) {
            Ok(t) => t,
            Err(_) => {
                self.error(format!(
                    "`at` \"{written}\" is not an RFC 3339 time with offset, like {example}"
                ));
                return None;
            }
        };
        if let Some(before) = *previous {
            if at < before {
                let (now, then) = clock_pair(at, before);
                self.error(format!(
                    "`at` {now} is before the previous line's {then}; events must be in time order"
                ));
                return None;
            }
        }
        *previous = Some(at);
        Some(at.with_timezone(&Utc))
    }

    /// Which kind of event the line holds (exactly one).
    fn kind(&mut self, obj: &Map<String, Value>) -> Option<&'static str> {
        let known: Vec<&'static str> = KINDS
            .iter()
            .copied()
            .filter(|k| obj.contains_key(*k))
            .collect();
        let extra: &[&str] = if known == ["agent"] {
            &["at", "agent", "online", "capacity"]
        } else {
            &["at"]
        };
        let unknown: Vec<&String> = obj
            .keys()
            .filter(|k| !KINDS.contains(&k.as_str()) && !extra.contains(&k.as_str()))
            .collect();
        match known[..] {
            [] => {
                let list = KINDS.join(", ");
                match unknown.first() {
                    Some(word) => {
                        let mut m = format!("unknown kind of event `{word}`; the kinds are {list}");
                        if let Some(hint) = did_you_mean(word, KINDS.iter().copied()) {
                            m.push_str(&format!(" ({hint})"));
                        }
                        self.error(m);
                    }
                    None => self.error(format!("the line names no event: give one of {list}")),
                }
                None
            }
            [kind] => {
                let allowed: Vec<&str> =
                    KINDS.iter().copied().chain(extra.iter().copied()).collect();
                for word in unknown {
                    let mut m = format!("unknown key `{word}` beside `{kind}`");
                    if let Some(hint) = did_you_mean(word, allowed.iter().copied()) {
                        m.push_str(&format!(" ({hint})"));
                    }
                    self.error(m);
                }
                Some(kind)
            }
            _ => {
                let names: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                self.error(format!(
                    "one event per line, but this line has {}",
                    names.join(" and ")
                ));
                None
            }
        }
    }

    fn object<'v>(
        &mut self,
        kind: &str,
        v: &'v Value,
        example: &str,
    ) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            other => {
                self.error(format!(
                    "`{kind}` must be an object like {example}, not {}",
                    json_kind(other)
                ));
                None
            }
        }
    }

    /// Reports keys an event does not take.
    fn only(&mut self, kind: &str, obj: &Map<String, Value>, keys: &[&str]) {
        for word in obj.keys().filter(|k| !keys.contains(&k.as_str())) {
            let mut m = format!(
                "`{kind}` takes no `{word}`; it takes {}",
                keys.iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(hint) = did_you_mean(word, keys.iter().copied()) {
                m.push_str(&format!(" ({hint})"));
            }
            self.error(m);
        }
    }

    /// A value that must be there.
    fn need<'v>(
        &mut self,
        kind: &str,
        obj: &'v Map<String, Value>,
        key: &str,
        want: Want,
    ) -> Option<&'v Value> {
        let v = obj.get(key);
        if v.is_none() {
            self.error(format!("`{kind}` needs `{key}` ({})", want.describe()));
        }
        v
    }

    fn ill_typed(&mut self, kind: &str, key: &str, want: Want, v: &Value) {
        self.error(format!(
            "`{kind}`'s `{key}` must be {}, not {}",
            want.describe(),
            shown(v)
        ));
    }

    fn string(
        &mut self,
        kind: &str,
        obj: &Map<String, Value>,
        key: &str,
        want: Want,
    ) -> Option<String> {
        let v = self.need(kind, obj, key, want)?;
        self.as_string(kind, key, want, v)
    }

    fn as_string(&mut self, kind: &str, key: &str, want: Want, v: &Value) -> Option<String> {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() => Some(s.to_string()),
            _ => {
                self.ill_typed(kind, key, want, v);
                None
            }
        }
    }

    fn card(&mut self, kind: &str, obj: &Map<String, Value>) -> Option<CardId> {
        let v = self.need(kind, obj, "card", Want::Card)?;
        match v.as_u64() {
            Some(n) if n >= 1 => usize::try_from(n - 1).ok(),
            _ => {
                self.ill_typed(kind, "card", Want::Card, v);
                None
            }
        }
    }

    fn message(&mut self, v: &Value) -> Option<ScriptedKind> {
        let example =
            r#"{"from":"5511987650001","name":"Maria","to":"+55 11 4000-1000","text":"Oi"}"#;
        let obj = self.object("message", v, example)?;
        let from = self
            .string("message", obj, "from", Want::Text)
            .and_then(|f| {
                let digits: String = f.chars().filter(char::is_ascii_digit).collect();
                if digits.is_empty() {
                    self.error(format!(
                        "`message`'s `from` must be the sender's WhatsApp id (digits), not \"{f}\""
                    ));
                    None
                } else {
                    Some(digits)
                }
            });
        let to = self.string("message", obj, "to", Want::Text);
        let name = match obj.get("name") {
            None => Some(String::new()),
            Some(v) => self.as_string("message", "name", Want::Text, v),
        };
        let id = match obj.get("id") {
            None => Some(format!("sim-{}", self.line)),
            Some(v) => self.as_string("message", "id", Want::Text, v),
        };
        let kind = match obj.get("type") {
            Some(v) => self.as_string("message", "type", Want::Text, v),
            None if obj.contains_key("text") => Some("text".to_string()),
            None => match switchboard_lang::model::MESSAGE_TYPES
                .iter()
                .find(|t| obj.contains_key(**t))
            {
                Some(t) => Some((*t).to_string()),
                None => {
                    self.error(
                        "`message` needs `text`, or a `type` with its payload, like \"type\":\"image\",\"image\":{\"caption\":\"…\"}",
                    );
                    None
                }
            },
        };
        let text = match obj.get("text") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(t) => match t.get("body").and_then(Value::as_str) {
                Some(body) => Some(body.to_string()),
                None => {
                    self.error(format!(
                        "`message`'s `text` must be a text (or {{\"body\":\"…\"}}), not {}",
                        shown(t)
                    ));
                    return None;
                }
            },
        };
        let kind = kind?;
        let text = text.or_else(|| payload_text(&kind, obj));
        if kind == "text" && text.is_none() {
            self.error("`message` of type `text` needs `text`");
            return None;
        }
        Some(ScriptedKind::Event(Event::Message(Inbound {
            id: id?,
            from: from?,
            name: name?,
            to: to?,
            kind,
            text,
        })))
    }

    fn agent(&mut self, obj: &Map<String, Value>) -> Option<ScriptedKind> {
        let email = match &obj["agent"] {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            other => {
                self.error(format!(
                    "`agent` must be the agent's e-mail, not {}",
                    shown(other)
                ));
                None
            }
        };
        let online = match obj.get("online") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                self.error(format!("`online` must be true or false, not {}", shown(v)));
                return None;
            }
        };
        let capacity = match obj.get("capacity") {
            None => None,
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) => Some(n),
                None => {
                    self.error(format!(
                        "`capacity` must be {}, not {}",
                        Want::Count.describe(),
                        shown(v)
                    ));
                    return None;
                }
            },
        };
        if online.is_none() && capacity.is_none() {
            self.error(format!(
                "`agent` needs `online` ({}) or `capacity` ({}) beside it",
                Want::Bool.describe(),
                Want::Count.describe()
            ));
            return None;
        }
        Some(ScriptedKind::Event(Event::Agent {
            email: email?,
            online,
            capacity,
        }))
    }

    fn until(&mut self, v: &Value) -> Option<ScriptedKind> {
        if v == &Value::Bool(true) {
            Some(ScriptedKind::Until)
        } else {
            self.error(format!("`until` must be `true`, not {}", shown(v)));
            None
        }
    }

    /// `expect`: what a workflow test expects of a card at this time.
    fn expect(&mut self, v: &Value) -> Option<ScriptedKind> {
        let example = r#"{"card":1,"status":"in_progress","assignee":"ana@acme.com"}"#;
        let obj = self.object("expect", v, example)?;
        self.only("expect", obj, EXPECT_KEYS);
        let card = self.card("expect", obj);
        let mut checks = Vec::new();
        let text_or_null = |me: &mut Self, key: &str, v: &Value| -> Option<Option<String>> {
            match v {
                Value::Null => Some(None),
                Value::String(s) => Some(Some(s.clone())),
                other => {
                    me.error(format!(
                        "`expect`'s `{key}` must be a text in quotes or null, not {}",
                        shown(other)
                    ));
                    None
                }
            }
        };
        for (key, value) in obj {
            let check = match key.as_str() {
                "card" => continue,
                "status" | "sla" | "replied" | "history" => match value {
                    Value::String(s) => Some(match key.as_str() {
                        "status" => Check::Status(s.clone()),
                        "sla" => Check::Sla(s.clone()),
                        "replied" => Check::Replied(s.clone()),
                        _ => Check::History(s.clone()),
                    }),
                    other => {
                        self.error(format!(
                            "`expect`'s `{key}` must be a text in quotes, not {}",
                            shown(other)
                        ));
                        None
                    }
                },
                "assignee" => text_or_null(self, key, value).map(Check::Assignee),
                "team" => text_or_null(self, key, value).map(Check::Team),
                "last_responder" => text_or_null(self, key, value).map(Check::LastResponder),
                "template_needed" => match value {
                    Value::Bool(b) => Some(Check::TemplateNeeded(*b)),
                    other => {
                        self.error(format!(
                            "`expect`'s `template_needed` must be true or false, not {}",
                            shown(other)
                        ));
                        None
                    }
                },
                "fields" => match value {
                    Value::Object(fields) => {
                        checks.extend(
                            fields
                                .iter()
                                .map(|(k, v)| Check::Field(k.clone(), v.clone())),
                        );
                        continue;
                    }
                    other => {
                        self.error(format!("`expect`'s `fields` must be an object like {{\"priority\":\"high\"}}, not {}", shown(other)));
                        None
                    }
                },
                _ => continue, // reported by `only`
            };
            if let Some(c) = check {
                checks.push(c);
            }
        }
        if checks.is_empty() {
            self.error(format!(
                "`expect` checks nothing; give at least one of {}",
                EXPECT_KEYS[1..].join(", ")
            ));
            return None;
        }
        Some(ScriptedKind::Expect {
            card: card?,
            checks,
        })
    }

    /// `reply`, `move`, `set`, `assign`, `status`: about an existing card.
    fn card_event(&mut self, kind: &str, v: &Value) -> Option<ScriptedKind> {
        let (example, keys): (&str, &[&str]) = match kind {
            "reply" => (
                r#"{"card":1,"agent":"ana@acme.com","text":"…"}"#,
                &["card", "agent", "text", "template", "language", "params"],
            ),
            "move" => (
                r#"{"card":1,"agent":"ana@acme.com","status":"waiting"}"#,
                &["card", "agent", "status"],
            ),
            "set" => (
                r#"{"card":1,"agent":"ana@acme.com","fields":{"order_id":"8812"}}"#,
                &["card", "agent", "fields"],
            ),
            "assign" => (
                r#"{"card":1,"agent":"ana@acme.com","to":"bruno@acme.com"}"#,
                &["card", "agent", "to", "team"],
            ),
            _ => (
                r#"{"card":1,"message":-1,"status":"read"}"#,
                &["card", "message", "status"],
            ),
        };
        let obj = self.object(kind, v, example)?;
        self.only(kind, obj, keys);
        let card = self.card(kind, obj);
        if kind == "status" {
            return self.status(obj, card);
        }
        let agent = self.string(kind, obj, "agent", Want::Email);
        let event = match kind {
            "reply" => {
                let body = self.reply_body(obj);
                Event::Reply {
                    card: card?,
                    agent: agent?,
                    body: body?,
                }
            }
            "move" => {
                let status = self.string(kind, obj, "status", Want::Text);
                Event::Move {
                    card: card?,
                    agent: agent?,
                    status: status?,
                }
            }
            "set" => {
                let fields = self.fields(obj);
                Event::Set {
                    card: card?,
                    agent: agent?,
                    fields: fields?,
                }
            }
            _ => {
                let to = match (obj.get("to"), obj.get("team")) {
                    (Some(a), None) => self
                        .as_string(kind, "to", Want::Email, a)
                        .map(AssignTo::Agent),
                    (None, Some(t)) => self
                        .as_string(kind, "team", Want::Text, t)
                        .map(AssignTo::Team),
                    (Some(_), Some(_)) => {
                        self.error("`assign` takes `to` (an agent) or `team`, not both");
                        None
                    }
                    (None, None) => {
                        self.error(
                            "`assign` needs `to` (an agent's e-mail) or `team` (a team name)",
                        );
                        None
                    }
                };
                Event::Assign {
                    card: card?,
                    agent: agent?,
                    to: to?,
                }
            }
        };
        Some(ScriptedKind::Event(event))
    }

    fn reply_body(&mut self, obj: &Map<String, Value>) -> Option<ReplyBody> {
        match (obj.get("text"), obj.get("template")) {
            (Some(t), None) => {
                for key in ["language", "params"] {
                    if obj.contains_key(key) {
                        self.error(format!(
                            "`reply`'s `{key}` goes with `template`, not `text`"
                        ));
                    }
                }
                self.as_string("reply", "text", Want::Text, t)
                    .map(ReplyBody::Text)
            }
            (None, Some(t)) => {
                let name = self.as_string("reply", "template", Want::Text, t);
                let language = match obj.get("language") {
                    Some(l) => self.as_string("reply", "language", Want::Text, l),
                    None => {
                        self.error("`reply` with a `template` needs `language` (like \"pt_BR\")");
                        None
                    }
                };
                let params = match obj.get("params") {
                    None => Some(Vec::new()),
                    Some(Value::Array(items)) => {
                        let mut out = Vec::new();
                        for item in items {
                            match item {
                                Value::String(s) => out.push(s.clone()),
                                Value::Number(n) => out.push(n.to_string()),
                                other => {
                                    self.error(format!(
                                        "`reply`'s `params` must be texts or numbers, not {}",
                                        shown(other)
                                    ));
                                    return None;
                                }
                            }
                        }
                        Some(out)
                    }
                    Some(other) => {
                        self.error(format!(
                            "`reply`'s `params` must be a list like [\"Maria\"], not {}",
                            shown(other)
                        ));
                        None
                    }
                };
                Some(ReplyBody::Template {
                    name: name?,
                    language: language?,
                    params: params?,
                })
            }
            (Some(_), Some(_)) => {
                self.error("`reply` takes `text` or `template`, not both");
                None
            }
            (None, None) => {
                self.error("`reply` needs `text`, or `template` with `language`");
                None
            }
        }
    }

    fn fields(&mut self, obj: &Map<String, Value>) -> Option<BTreeMap<String, Value>> {
        match obj.get("fields") {
            None => {
                self.error("`set` needs `fields` (an object like {\"order_id\":\"8812\"})");
                None
            }
            Some(Value::Object(f)) if !f.is_empty() => {
                Some(f.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            Some(Value::Object(_)) => {
                self.error("`set`'s `fields` is empty: name at least one field");
                None
            }
            Some(other) => {
                self.error(format!(
                    "`set`'s `fields` must be an object like {{\"order_id\":\"8812\"}}, not {}",
                    shown(other)
                ));
                None
            }
        }
    }

    fn status(&mut self, obj: &Map<String, Value>, card: Option<CardId>) -> Option<ScriptedKind> {
        let message = self.need("status", obj, "message", Want::Count).and_then(|v| {
            match v.as_i64() {
                Some(n) if n != 0 => Some(n),
                _ => {
                    self.error(format!(
                        "`status`'s `message` must be a sent message's number (from 1, or -1 for the last), not {}",
                        shown(v)
                    ));
                    None
                }
            }
        });
        let status = self
            .string("status", obj, "status", Want::Text)
            .and_then(|s| {
                if DELIVERY_STATUSES.contains(&s.as_str()) {
                    Some(s)
                } else {
                    let mut m = format!(
                        "unknown delivery status \"{s}\"; WhatsApp reports {}",
                        DELIVERY_STATUSES.join(", ")
                    );
                    if let Some(hint) = did_you_mean(&s, DELIVERY_STATUSES.iter().copied()) {
                        m.push_str(&format!(" ({hint})"));
                    }
                    self.error(m);
                    None
                }
            });
        Some(ScriptedKind::Status {
            card: card?,
            message: message?,
            status: status?,
        })
    }
}

/// The text of a non-text message, where WhatsApp gives one: a caption,
/// a button's text, an interactive reply's title.
fn payload_text(kind: &str, obj: &Map<String, Value>) -> Option<String> {
    let payload = obj.get(kind)?;
    let text = match kind {
        "image" | "video" | "document" | "audio" | "sticker" => payload.get("caption"),
        "button" => payload.get("text"),
        "interactive" => payload
            .get("button_reply")
            .or_else(|| payload.get("list_reply"))
            .and_then(|r| r.get("title")),
        _ => None,
    };
    text.and_then(Value::as_str).map(str::to_string)
}

/// A JSON syntax error in one sentence, saying where.
fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    // serde_json appends " at line L column C"; each line is its own
    // document, so only the column matters.
    let what = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    if e.is_eof() {
        format!(
            "invalid JSON: the line ends at column {} before the object is closed",
            e.column()
        )
    } else {
        format!("invalid JSON at column {}: {what}", e.column())
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value as written, for messages (short).
fn shown(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => json_kind(v).to_string(),
        other => other.to_string(),
    }
}

/// Two times as people read them: `09:05` and `09:06` on the same day,
/// with the date when the days differ.
fn clock_pair(a: DateTime<FixedOffset>, b: DateTime<FixedOffset>) -> (String, String) {
    let seconds = a.format("%S").to_string() != "00" || b.format("%S").to_string() != "00";
    let time = if seconds { "%H:%M:%S" } else { "%H:%M" };
    let format = if a.date_naive() == b.date_naive() {
        time.to_string()
    } else {
        format!("%Y-%m-%d {time}")
    };
    (a.format(&format).to_string(), b.format(&format).to_string())
}

//! `switchboard simulate`: plays a scripted conversation against a workflow
//! on a virtual clock, and tells what happened to each card and why — as a
//! timeline people read, or as one JSON object (`{"cards":[…],"log":[…]}`).
//!
//! Before each scripted line the clock runs to the line's time, so timers
//! due on the way fire first, each at its own instant; then the line's event
//! is applied at its time.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::Path;
use std::process::ExitCode;
use switchboard_engine::conversation::{self, Scripted, ScriptedKind};
use switchboard_engine::event::Candidate;
use switchboard_engine::state::{Direction, TimerKind};
use switchboard_engine::{
    view, AssignTo, Cause, Effect, EffectKind, Engine, Event, LogEntry, Outcome, ReplyBody, State,
};
use switchboard_lang::model::Pipe;
use switchboard_lang::values::format_duration;
use switchboard_lang::{diagnostic, Severity};
use switchboard_server::files;

/// How much of a message a timeline line shows.
const SHOWN_CHARS: usize = 60;

/// Checks the workflow, parses the events, plays them; exit 1 on invalid
/// input (workflow errors, event-file mistakes, a card that does not exist).
pub fn run(flow: &Path, events: &Path, json: bool) -> Result<ExitCode, String> {
    let list = files::flow_files(&[flow.to_path_buf()], true)?;
    if list.is_empty() {
        return Err(format!("no .flow files found in {}", flow.display()));
    }
    let mut sources = files::load(&list)?;
    let checked = switchboard_lang::check(&mut sources, &files::DiskLoader);
    // Warnings too, on stderr: they never spoil `--json` on stdout.
    eprint!("{}", diagnostic::render(&checked.diagnostics, &sources));
    if checked.has_errors() {
        let errors = checked
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        eprintln!(
            "error: {} has {errors} error{}; fix {} before simulating",
            files::display(flow),
            if errors == 1 { "" } else { "s" },
            if errors == 1 { "it" } else { "them" },
        );
        return Ok(ExitCode::from(1));
    }
    let events_name = files::display(events);
    let text = std::fs::read_to_string(events).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("the events file {events_name} does not exist"),
        _ => format!("cannot read the events file {events_name}: {e}"),
    })?;
    let script = match conversation::parse(&text) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                eprintln!("{events_name}:{}: error: {}", e.line, e.message);
            }
            eprintln!(
                "error: {} mistake{} in {events_name}; nothing was simulated",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(1));
        }
    };

    let engine = Engine::new(checked.workflow);
    let mut sim = Simulation::new(&engine);
    let failure = script.iter().find_map(|item| sim.play(item).err());
    if json {
        if failure.is_none() {
            println!("{}", pretty(&sim.json()));
        }
    } else {
        let zone = display_zone(&engine);
        print!(
            "{}",
            sim.timeline(&files::display(flow), &events_name, zone)
        );
        if failure.is_none() {
            print!("{}", sim.summary(zone));
        }
    }
    match failure {
        Some((line, message)) => {
            eprintln!("{events_name}:{line}: error: {message}");
            Ok(ExitCode::from(1))
        }
        None if !sim.failures.is_empty() => {
            for (line, message) in &sim.failures {
                eprintln!("{events_name}:{line}: not as expected: {message}");
            }
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The pipe whose time zone the timeline uses: the one all pipes share,
/// or none (UTC) when they differ.
fn display_zone(engine: &Engine) -> Option<&Pipe> {
    let pipes = &engine.workflow().pipes;
    let first = pipes.first()?;
    pipes
        .iter()
        .all(|p| p.timezone == first.timezone)
        .then_some(first)
}

/// A run in progress: the state and what happened so far.
pub(crate) struct Simulation<'e> {
    engine: &'e Engine,
    state: State,
    blocks: Vec<Block>,
    /// Expectations not met, with their lines (workflow tests).
    pub(crate) failures: Vec<(usize, String)>,
}

/// What happened at one instant: a scripted line, or timers.
struct Block {
    at: DateTime<Utc>,
    /// The scripted line; `None` for timers that fell due.
    line: Option<Scripted>,
    /// The timers that fell due, in words (for timer blocks).
    timers: Vec<String>,
    items: Vec<Item>,
}

/// One thing in a block, in the order it happened.
enum Item {
    /// A rule was looked at.
    Rule(LogEntry),
    /// What the engine did.
    Effect(Effect),
    /// A workflow test's expectation, and what was not met.
    Expect { card: usize, failures: Vec<String> },
    /// WhatsApp reported a delivery status (scripted).
    Delivery {
        card: usize,
        message: String,
        text: Option<String>,
        status: String,
    },
}

impl<'e> Simulation<'e> {
    /// A fresh run of an engine.
    pub(crate) fn new(engine: &'e Engine) -> Simulation<'e> {
        Simulation {
            engine,
            state: State::default(),
            blocks: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Plays one scripted line: first the timers due up to its time, then
    /// the line itself. An error names the line and says what is wrong.
    pub(crate) fn play(&mut self, item: &Scripted) -> Result<(), (usize, String)> {
        self.run_clock_to(item.at);
        if let Some(card) = item.card() {
            let count = self.state.cards.len();
            if card >= count {
                let so_far = match count {
                    0 => "no card has been opened yet".to_string(),
                    1 => "only card #1 has been opened so far".to_string(),
                    n => format!("only cards #1 to #{n} have been opened so far"),
                };
                return Err((
                    item.line,
                    format!(
                        "`{}` names card #{}, which does not exist yet: {so_far}",
                        item.kind(),
                        card + 1
                    ),
                ));
            }
        }
        let items = match &item.what {
            ScriptedKind::Event(event) => {
                let out = self.engine.step(&mut self.state, event.clone(), item.at);
                merge(out)
            }
            ScriptedKind::Status {
                card,
                message,
                status,
            } => vec![self.delivery(item.line, *card, *message, status)?],
            ScriptedKind::Until => Vec::new(),
            ScriptedKind::Expect { card, checks } => {
                let failures: Vec<String> = checks
                    .iter()
                    .filter_map(|c| c.verify(&self.state, *card))
                    .collect();
                for f in &failures {
                    self.failures
                        .push((item.line, format!("card #{}: {f}", card + 1)));
                }
                vec![Item::Expect {
                    card: *card,
                    failures,
                }]
            }
        };
        self.blocks.push(Block {
            at: item.at,
            line: Some(item.clone()),
            timers: Vec::new(),
            items,
        });
        Ok(())
    }

    /// Fires the timers due up to `until`, one instant at a time, so that
    /// each effect can be shown at the time it happened.
    fn run_clock_to(&mut self, until: DateTime<Utc>) {
        while let Some(next) = self
            .state
            .timers
            .first()
            .map(|t| t.at)
            .filter(|t| *t <= until)
        {
            let due = self.due(next);
            let out = self.engine.advance(&mut self.state, next);
            self.timer_block(next, due, out);
            // An engine that leaves due timers in place would loop here.
            if self.state.timers.first().is_some_and(|t| t.at <= next) {
                break;
            }
        }
        let due = self.due(until);
        let out = self.engine.advance(&mut self.state, until);
        self.timer_block(until, due, out);
    }

    /// The timers due by `at`, in words (before they fire).
    fn due(&self, at: DateTime<Utc>) -> Vec<String> {
        let workflow = self.engine.workflow();
        self.state
            .timers
            .iter()
            .take_while(|t| t.at <= at)
            .map(|t| {
                let card = t.card.wrapping_add(1);
                match t.kind {
                    TimerKind::SlaWarning(k) => format!("SLA {} warns on card #{card}", k.name()),
                    TimerKind::SlaBreach(k) => {
                        format!("SLA {} runs out on card #{card}", k.name())
                    }
                    TimerKind::Idle(secs) => {
                        format!("card #{card} has been idle for {}", format_duration(secs))
                    }
                    TimerKind::WindowClosing(secs) => format!(
                        "the 24-hour window of card #{card} closes in {}",
                        format_duration(secs)
                    ),
                    TimerKind::Schedule { pipe, index } => workflow
                        .pipes
                        .get(pipe)
                        .and_then(|p| p.schedules.get(index).map(|s| (p, s)))
                        .map(|(p, s)| format!("schedule of {} ({})", p.name, s.origin))
                        .unwrap_or_else(|| "a schedule".to_string()),
                }
            })
            .collect()
    }

    fn timer_block(&mut self, at: DateTime<Utc>, due: Vec<String>, out: Outcome) {
        if out.effects.is_empty() && out.log.is_empty() {
            return;
        }
        self.blocks.push(Block {
            at,
            line: None,
            timers: due,
            items: merge(out),
        });
    }

    /// Records a delivery status on the card's sent message (the engine has
    /// no event for it yet, so the simulator keeps the message's status).
    fn delivery(
        &mut self,
        line: usize,
        card: usize,
        message: i64,
        status: &str,
    ) -> Result<Item, (usize, String)> {
        let c = &mut self.state.cards[card];
        let sent: Vec<usize> = c
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.direction == Direction::Out)
            .map(|(i, _)| i)
            .collect();
        let wanted = if message > 0 {
            usize::try_from(message - 1).ok()
        } else {
            usize::try_from(-message)
                .ok()
                .and_then(|back| sent.len().checked_sub(back))
        };
        let Some(&index) = wanted.and_then(|w| sent.get(w)) else {
            let has = match sent.len() {
                0 => "none has been sent yet".to_string(),
                1 => "only 1 has been sent so far".to_string(),
                n => format!("only {n} have been sent so far"),
            };
            return Err((
                line,
                format!(
                    "`status` names message {message} sent on card #{}, but {has}",
                    card + 1
                ),
            ));
        };
        let m = &mut c.messages[index];
        m.status = Some(status.to_string());
        Ok(Item::Delivery {
            card,
            message: m.id.clone(),
            text: m.text.clone(),
            status: status.to_string(),
        })
    }

    /// `{"cards":[…],"log":[…]}`.
    fn json(&self) -> Value {
        let cards: Vec<Value> = (0..self.state.cards.len())
            .map(|id| view::card_json(&self.state, id, true))
            .collect();
        let mut log = Vec::new();
        for block in &self.blocks {
            let at = time(block.at);
            let line = block.line.as_ref().map(|l| l.line);
            for item in &block.items {
                let mut entry = match item {
                    Item::Rule(l) => serde_json::to_value(l).unwrap_or(Value::Null),
                    Item::Effect(e) => serde_json::to_value(e).unwrap_or(Value::Null),
                    Item::Delivery {
                        card,
                        message,
                        status,
                        ..
                    } => json!({ "card": card, "delivery": status, "message": message }),
                    Item::Expect { card, failures } => {
                        json!({ "card": card, "expect": failures.is_empty(), "failures": failures })
                    }
                };
                if let Value::Object(o) = &mut entry {
                    // Cards are numbered as in the events file: from 1 in
                    // order of creation (the index in `cards`, plus one).
                    let card = o.get("card").and_then(Value::as_u64).map(|c| c + 1);
                    o.insert("card".into(), json!(card));
                    o.entry("at").or_insert_with(|| json!(at));
                    o.insert("line".into(), json!(line));
                }
                log.push(entry);
            }
        }
        json!({ "cards": cards, "log": log })
    }

    /// The timeline: one block per scripted line or timer instant.
    fn timeline(&self, flow: &str, events: &str, zone: Option<&Pipe>) -> String {
        let zone_name = zone.map_or("UTC".to_string(), |p| p.timezone.name().to_string());
        let mut out = format!("simulating {flow} with {events} (times in {zone_name})\n");
        let mut day = String::new();
        for block in &self.blocks {
            let today = local(block.at, zone, "%a %Y-%m-%d");
            if today != day {
                out.push_str(&format!("\n{today}\n"));
                day = today;
            }
            let clock = clock(block.at, zone);
            let head = match &block.line {
                Some(l) => head(l),
                None if block.timers.is_empty() => "timers fall due".to_string(),
                None => format!("timer: {}", block.timers.join("; ")),
            };
            out.push_str(&format!("{clock}  {head}\n"));
            let cards: std::collections::BTreeSet<usize> = block
                .items
                .iter()
                .filter_map(|i| match i {
                    Item::Effect(e) => e.card,
                    Item::Rule(l) => l.card,
                    Item::Delivery { card, .. } | Item::Expect { card, .. } => Some(*card),
                })
                .collect();
            let named = block.line.as_ref().and_then(Scripted::card);
            // Name the card on each line when the block is not about one
            // card the head already names.
            let tag = cards.len() > 1 || (named.is_none() && !is_message(block));
            for item in &block.items {
                if let Some(text) = self.describe(item, block, zone) {
                    let card = match item {
                        Item::Effect(e) => e.card,
                        Item::Rule(l) => l.card,
                        Item::Delivery { .. } | Item::Expect { .. } => None,
                    };
                    match card.filter(|_| tag) {
                        Some(c) => out.push_str(&format!("  #{}: {text}\n", c + 1)),
                        None => out.push_str(&format!("  {text}\n")),
                    }
                }
            }
        }
        out
    }

    /// One item in words, with its cause; `None` for what goes without saying.
    fn describe(&self, item: &Item, block: &Block, zone: Option<&Pipe>) -> Option<String> {
        let e = match item {
            Item::Rule(l) if l.fired => return None,
            Item::Rule(l) => {
                return Some(format!(
                    "not fired: rule {} ({}) — {}",
                    l.rule, l.origin, l.reason
                ))
            }
            Item::Delivery {
                message,
                text,
                status,
                ..
            } => {
                let text = text
                    .as_deref()
                    .map(|t| format!(" {}", quote(t)))
                    .unwrap_or_default();
                return Some(format!("message {message}{text} is now {status}"));
            }
            Item::Expect { failures, .. } if failures.is_empty() => {
                return Some("as expected".to_string())
            }
            Item::Expect { failures, .. } => {
                return Some(format!("NOT AS EXPECTED: {}", failures.join("; ")))
            }
            Item::Effect(e) => e,
        };
        let by = by(&e.cause);
        let short = short(&e.cause);
        Some(match &e.kind {
            EffectKind::CardOpened { number, pipe } => {
                let id = e.card.map_or(0, |c| c + 1);
                let status = e
                    .card
                    .and_then(|c| self.state.cards.get(c))
                    .and_then(|c| c.history.first())
                    .map(|h| h.what.clone())
                    .unwrap_or_default();
                let mut s = format!("card #{id} opened in {pipe}");
                if *number != id as u64 {
                    s.push_str(&format!(" (its number there: {number})"));
                }
                if let Some(initial) = status.strip_prefix("opened in ") {
                    s.push_str(&format!(" as {}", initial.trim_matches('`')));
                }
                s
            }
            EffectKind::MessageKept { id } => {
                let opened_now = block.items.iter().any(|i| {
                    matches!(i, Item::Effect(o) if o.card == e.card
                        && matches!(o.kind, EffectKind::CardOpened { .. }))
                });
                if opened_now {
                    return None;
                }
                format!("message {id} joins card #{}", e.card.map_or(0, |c| c + 1))
            }
            EffectKind::Moved { from, to } => format!("moved {from} → {to} {by}"),
            EffectKind::Refused { what, reason } => format!("refused: {what} — {reason} ({short})"),
            EffectKind::Assigned {
                agent,
                team,
                candidates,
            } => {
                let mut s = format!("assigned to {agent}");
                if let Some(t) = team {
                    s.push_str(&format!(" (team {t})"));
                }
                s.push(' ');
                s.push_str(&by);
                let others = others(candidates);
                if !others.is_empty() {
                    s.push_str(&format!(" — {others}"));
                }
                s
            }
            EffectKind::Queued { team, candidates } => {
                let mut s = format!("waits in team {team}'s queue {by}");
                let others = others(candidates);
                if !others.is_empty() {
                    s.push_str(&format!(" — {others}"));
                }
                s
            }
            EffectKind::Unassigned => format!("unassigned {by}"),
            EffectKind::FieldSet { field, from, to } => {
                format!("{field} set to {} (was {}) {by}", show(to), show(from))
            }
            EffectKind::Send {
                message: _,
                to,
                text,
                template,
                language,
                params,
            } => match (text, template) {
                (_, Some(name)) => format!(
                    "template {name} ({}) [{}] → {to} ({short})",
                    language.as_deref().unwrap_or("?"),
                    params.join(", ")
                ),
                (Some(t), None) => format!("reply → {to}: {} ({short})", quote(t)),
                (None, None) => format!("reply → {to} ({short})"),
            },
            EffectKind::Note { text } => format!("note: {} ({short})", quote(text)),
            EffectKind::Notify { to, text } => {
                format!("notify {}: {} ({short})", to.join(", "), quote(text))
            }
            EffectKind::Webhook { url } => format!("webhook POST {url} ({short})"),
            EffectKind::Failed { what } => format!("failed: {what} ({short})"),
            EffectKind::Sla { kind, state } => {
                let due = e
                    .card
                    .and_then(|c| self.state.cards.get(c))
                    .and_then(|c| c.sla.as_ref())
                    .filter(|s| &s.kind == kind)
                    .and_then(|s| s.due_at);
                match due {
                    Some(d) if state == "warning" => {
                        format!("SLA {kind}: warning, due at {}", clock(d, zone))
                    }
                    _ => format!("SLA {kind}: {state}"),
                }
            }
            EffectKind::ChainCut { depth } => {
                format!("chain of rules cut off at depth {depth}: the workflow may loop ({short})")
            }
        })
    }

    /// Every card as it ends: number, pipe, status, assignee, fields, SLA.
    fn summary(&self, zone: Option<&Pipe>) -> String {
        let cards = &self.state.cards;
        let at = self.state.now.map(|t| local(t, zone, "%a %Y-%m-%d %H:%M"));
        let mut out = format!(
            "\n{} card{}{}\n",
            cards.len(),
            if cards.len() == 1 { "" } else { "s" },
            at.map(|t| format!(" at {t}")).unwrap_or_default()
        );
        for c in cards {
            let assignee = match (&c.assignee, &c.team) {
                (Some(a), Some(t)) => format!("{a} (team {t})"),
                (Some(a), None) => a.clone(),
                (None, Some(t)) => format!("nobody yet (team {t})"),
                (None, None) => "nobody".to_string(),
            };
            let responder = match c.last_responder {
                Some(r) => serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                None => "nobody".to_string(),
            };
            let contact = self
                .state
                .contacts
                .get(&c.contact)
                .map(|x| format!("{} ({})", x.name, x.wa_id))
                .unwrap_or_else(|| c.contact.clone());
            out.push_str(&format!(
                "  #{} {} #{} — {contact}: {}, assigned to {assignee}, last responder {responder}\n",
                c.id + 1,
                c.pipe,
                c.number,
                c.status
            ));
            let fields: Vec<String> = c
                .fields
                .iter()
                .map(|(k, v)| {
                    let v = serde_json::to_value(v).unwrap_or(Value::Null);
                    format!("{k} {}", show(&v))
                })
                .collect();
            if !fields.is_empty() {
                out.push_str(&format!("      fields: {}\n", fields.join(", ")));
            }
            if let Some(s) = &c.sla {
                let due = s
                    .due_at
                    .map(|d| format!(", due {}", local(d, zone, "%Y-%m-%d %H:%M")))
                    .unwrap_or_default();
                out.push_str(&format!("      sla: {} {}{due}\n", s.kind, s.state));
            }
            if c.template_needed {
                out.push_str("      only a template can reach the contact now\n");
            }
        }
        out
    }
}

fn is_message(block: &Block) -> bool {
    matches!(
        block.line.as_ref().map(|l| &l.what),
        Some(ScriptedKind::Event(Event::Message(_)))
    )
}

/// Puts the rules looked at among the effects, in the order they happened.
///
/// An [`Outcome`] keeps effects and rule log apart; a rule's log entry is
/// written just before the effects it causes, so each rule-caused effect
/// goes after the log entries up to its rule's. Entries left over (rules
/// that did not fire after the last effect) come last.
fn merge(out: Outcome) -> Vec<Item> {
    let mut pending: VecDeque<LogEntry> = out.log.into();
    let mut current: Option<(String, String)> = None;
    let mut items = Vec::new();
    for e in out.effects {
        if let Cause::Rule { name, at } = &e.cause {
            let key = (name.clone(), at.clone());
            if current.as_ref() != Some(&key) {
                if let Some(pos) = pending
                    .iter()
                    .position(|l| &l.rule == name && &l.origin == at)
                {
                    items.extend(pending.drain(..=pos).map(Item::Rule));
                    current = Some(key);
                }
            }
        }
        items.push(Item::Effect(e));
    }
    items.extend(pending.into_iter().map(Item::Rule));
    items
}

/// The head line of a scripted line's block.
fn head(l: &Scripted) -> String {
    match &l.what {
        ScriptedKind::Event(Event::Message(m)) => {
            let who = if m.name.is_empty() {
                m.from.clone()
            } else {
                format!("{} ({})", m.name, m.from)
            };
            let what = match (&m.text, m.kind.as_str()) {
                (Some(t), "text") => quote(t),
                (Some(t), kind) => format!("[{kind}] {}", quote(t)),
                (None, kind) => format!("[{kind}]"),
            };
            format!("{who} → {}: {what}", m.to)
        }
        ScriptedKind::Event(Event::Agent {
            email,
            online,
            capacity,
        }) => {
            let mut s = email.clone();
            match online {
                Some(true) => s.push_str(" is online"),
                Some(false) => s.push_str(" is away"),
                None => s.push_str(" changes capacity"),
            }
            if let Some(c) = capacity {
                s.push_str(&format!(" (capacity {c})"));
            }
            s
        }
        ScriptedKind::Event(Event::Undeliverable { card, reason, .. }) => {
            format!("WhatsApp refuses a message of card #{}: {reason}", card + 1)
        }
        ScriptedKind::Event(Event::Reply { card, agent, body }) => match body {
            ReplyBody::Text(t) => format!("{agent} replies on card #{}: {}", card + 1, quote(t)),
            ReplyBody::Template {
                name,
                language,
                params,
            } => format!(
                "{agent} sends template {name} ({language}) [{}] on card #{}",
                params.join(", "),
                card + 1
            ),
        },
        ScriptedKind::Event(Event::Move {
            card,
            agent,
            status,
        }) => format!("{agent} moves card #{} to {status}", card + 1),
        ScriptedKind::Event(Event::Set {
            card,
            agent,
            fields,
        }) => {
            let list: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k} = {}", show(v)))
                .collect();
            format!("{agent} sets {} on card #{}", list.join(", "), card + 1)
        }
        ScriptedKind::Event(Event::Assign { card, agent, to }) => {
            let to = match to {
                AssignTo::Agent(a) => a.clone(),
                AssignTo::Team(t) => format!("team {t}"),
            };
            format!("{agent} assigns card #{} to {to}", card + 1)
        }
        ScriptedKind::Status {
            card,
            message,
            status,
        } => {
            let which = match message {
                -1 => "the last message".to_string(),
                n if *n < 0 => format!("message {} from the end", -n),
                n => format!("message {n}"),
            };
            format!("WhatsApp: {which} sent on card #{} was {status}", card + 1)
        }
        ScriptedKind::Until => "the clock runs on".to_string(),
        ScriptedKind::Expect { card, .. } => format!("expect, of card #{}:", card + 1),
    }
}

/// The candidates not chosen, and why: `bruno@acme.com away, carla@acme.com
/// at capacity (3 of 3)`.
fn others(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .filter(|c| !c.chosen)
        .map(|c| format!("{} {}", c.agent, c.why))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A cause as the end of a sentence: `by rule greet (workflows/support.flow:55)`.
fn by(cause: &Cause) -> String {
    match cause {
        Cause::Rule { name, at } => format!("by rule {name} ({at})"),
        Cause::Agent { email } => format!("by {email}"),
        Cause::Customer => "by the customer".to_string(),
        Cause::Timer { what } => format!("by the timer: {what}"),
        Cause::Engine { reason } => format!("by {reason}"),
    }
}

/// A cause in a word or two: `rule greet`, `ana@acme.com`.
fn short(cause: &Cause) -> String {
    match cause {
        Cause::Rule { name, .. } => format!("rule {name}"),
        Cause::Agent { email } => email.clone(),
        Cause::Customer => "the customer".to_string(),
        Cause::Timer { what } => what.clone(),
        Cause::Engine { reason } => reason.clone(),
    }
}

/// A text in quotes, cut short when long.
fn quote(text: &str) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() > SHOWN_CHARS {
        let cut: String = one_line.chars().take(SHOWN_CHARS - 1).collect();
        format!("\"{}…\"", cut.trim_end())
    } else {
        format!("\"{one_line}\"")
    }
}

/// A JSON value as people write it: `none`, `120` (not `120.0`), `"text"`.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "none".to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A time in the display zone, formatted.
fn local(t: DateTime<Utc>, zone: Option<&Pipe>, format: &str) -> String {
    match zone {
        Some(p) => t.with_timezone(&p.timezone).format(format).to_string(),
        None => t.format(format).to_string(),
    }
}

/// `09:05`, or `09:05:30` when there are seconds.
fn clock(t: DateTime<Utc>, zone: Option<&Pipe>) -> String {
    if t.format("%S").to_string() == "00" {
        local(t, zone, "%H:%M")
    } else {
        local(t, zone, "%H:%M:%S")
    }
}

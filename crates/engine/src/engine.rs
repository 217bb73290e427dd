//! `Engine::step`: one event in, effects out. Rules run in file order; the
//! changes a rule makes start further rules (a chain), cut off at
//! [`MAX_CHAIN`] steps so that a workflow that loops never hangs.

use crate::assign;
use crate::eval;
use crate::event::*;
use crate::plan::{Candidate, Memo, Node, PipePlan, NO_GUARD};
use crate::state::*;
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;
use switchboard_lang::model::{
    Action, Condition, NotifyTarget, Pipe, Rule, SetValue, SlaKind, Trigger, Workflow,
};
use switchboard_script::Sandbox;

/// How many rules may start each other in a row before the chain is cut.
pub const MAX_CHAIN: usize = 8;

/// How long WhatsApp's customer-service window stays open after the
/// customer's last message.
pub const WINDOW: Duration = Duration::hours(24);

/// Runs a checked workflow.
pub struct Engine {
    workflow: Workflow,
    /// Whether the log says why each rule did not fire (simulate, tests, the
    /// "why" view); the server's hot path can turn it off.
    explain: bool,
    pub(crate) sandbox: Sandbox,
    pub(crate) texts: minijinja::Environment<'static>,
    /// Each pipe's business calendar, built once.
    calendars: Vec<crate::calendar::Calendar>,
    /// Every pattern rules test `message.text` with, as one set: a message
    /// is read once for all of them instead of once per rule.
    pub(crate) text_patterns: Option<(regex::RegexSet, std::collections::HashMap<String, usize>)>,
    /// Each pipe's rules by trigger and their conditions' atoms (aligned
    /// with the workflow's pipes).
    pub(crate) plans: Vec<PipePlan>,
    /// The most atoms any pipe has.
    max_atoms: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pipes", &self.workflow.pipes.len())
            .finish()
    }
}

/// What started rules on a card, inside one step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Fired {
    CardCreated,
    MessageReceived,
    MessageSent,
    StatusChanged(String),
    FieldChanged(String),
    CardAssigned,
    SlaWarning(SlaKind),
    SlaBreached(SlaKind),
    Idle(u64),
    WindowClosing(u64),
}

impl Fired {
    pub(crate) fn starts(&self, t: &Trigger) -> bool {
        match (self, t) {
            (Fired::CardCreated, Trigger::CardCreated)
            | (Fired::MessageReceived, Trigger::MessageReceived)
            | (Fired::MessageSent, Trigger::MessageSent)
            | (Fired::CardAssigned, Trigger::CardAssigned) => true,
            (Fired::StatusChanged(s), Trigger::StatusChanged(to)) => {
                to.as_ref().is_none_or(|t| t == s)
            }
            (Fired::FieldChanged(f), Trigger::FieldChanged(g)) => f == g,
            (Fired::SlaWarning(a), Trigger::SlaWarning(b))
            | (Fired::SlaBreached(a), Trigger::SlaBreached(b)) => a == b,
            (Fired::Idle(a), Trigger::Idle(b))
            | (Fired::WindowClosing(a), Trigger::WindowClosing(b)) => a == b,
            _ => false,
        }
    }
}

impl Engine {
    /// An engine for a checked workflow.
    pub fn new(workflow: Workflow) -> Engine {
        let mut texts = minijinja::Environment::new();
        texts.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        let text_patterns = text_pattern_set(&workflow);
        let calendars = workflow
            .pipes
            .iter()
            .map(crate::calendar::Calendar::for_pipe)
            .collect();
        let plans: Vec<PipePlan> = workflow
            .pipes
            .iter()
            .map(|p| PipePlan::new(p, text_patterns.as_ref().map(|(_, index)| index)))
            .collect();
        let max_atoms = plans.iter().map(|p| p.atoms.len()).max().unwrap_or(0);
        Engine {
            workflow,
            explain: true,
            calendars,
            text_patterns,
            plans,
            max_atoms,
            sandbox: Sandbox::default(),
            texts,
        }
    }

    /// Turns the "why not" of rules that did not fire on or off (on by
    /// default). Fired rules, failures and every effect's cause are always
    /// recorded.
    pub fn with_explanations(mut self, on: bool) -> Engine {
        self.explain = on;
        self
    }

    /// A pipe's business calendar.
    pub fn calendar(&self, pipe: &str) -> Option<&crate::calendar::Calendar> {
        self.workflow
            .pipes
            .iter()
            .position(|p| p.name == pipe)
            .map(|i| &self.calendars[i])
    }

    /// The workflow it runs.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// Lets the clock run to `until`, firing the timers that fall due on the
    /// way (SLA warnings and breaches, idle, window closing, schedules), each
    /// at its own instant, in order.
    pub fn advance(&self, state: &mut State, until: DateTime<Utc>) -> Outcome {
        let mut run = Run::new(self, state, until);
        run.plan_schedules(until);
        while let Some(timer) = run.state.timers.first().cloned().filter(|t| t.at <= until) {
            run.state.timers.remove(&timer);
            run.now = timer.at;
            run.fire(timer);
            run.run_chain();
        }
        run.out
    }

    /// After the workflow changed: every card on a status its pipe no
    /// longer has moves to the pipe's initial status, and its history says
    /// why. Cards of a pipe that is gone are left as they are (the server
    /// refuses such a change while they are open).
    pub fn adopt(&self, state: &mut State, now: DateTime<Utc>) -> Outcome {
        let mut run = Run::new(self, state, now);
        for card in 0..run.state.cards.len() {
            let Some(pipe) = self.workflow.pipe(&run.state.cards[card].pipe) else {
                continue;
            };
            let from = run.state.cards[card].status.clone();
            if pipe.status(&from).is_some() {
                continue;
            }
            let Some(initial) = pipe.initial_status() else {
                continue;
            };
            let to = initial.name.clone();
            let cause = Cause::Engine {
                reason: format!(
                    "the workflow no longer has status `{from}`; its cards return to `{to}`"
                ),
            };
            assign::set_open(&mut run, card, initial.kind.is_open_work());
            run.state.cards[card].status = to.clone();
            run.clocks_follow_status(card);
            run.history(card, format!("moved from `{from}` to `{to}`"), &cause);
            run.effect(Some(card), EffectKind::Moved { from, to }, &cause);
        }
        // Schedules follow the new workflow: the old ones are forgotten,
        // each new one runs next at its own time after now.
        run.state
            .timers
            .retain(|t| !matches!(t.kind, TimerKind::Schedule { .. }));
        if run.state.now.is_some() {
            for p in 0..self.workflow.pipes.len() {
                for i in 0..self.workflow.pipes[p].schedules.len() {
                    run.plan_schedule(p, i, now);
                }
            }
        }
        run.out
    }

    /// The cards of a pipe that a view of the workflow shows, in the view's
    /// order; `None` when the pipe has no such view. The filter is the
    /// rules' condition language; a script that fails hides the card.
    pub fn view(
        &self,
        state: &mut State,
        pipe: &str,
        view: &str,
        now: DateTime<Utc>,
    ) -> Option<Vec<CardId>> {
        let p = self.workflow.pipe(pipe)?;
        let v = p.views.iter().find(|v| v.name == view)?;
        let run = Run::new(self, state, now);
        let mut ids: Vec<CardId> = (0..run.state.cards.len())
            .filter(|&id| run.state.cards[id].pipe == pipe)
            .filter(|&id| match &v.filter {
                None => true,
                Some(c) => matches!(eval::condition(&run, id, c, false), Ok(None)),
            })
            .collect();
        if let Some((key, descending)) = &v.sort {
            use switchboard_lang::model::SortKey;
            let cards = &run.state.cards;
            ids.sort_by(|&a, &b| {
                let (a, b) = (&cards[a], &cards[b]);
                let order = match key {
                    SortKey::Due => {
                        let due = |c: &Card| c.sla.as_ref().and_then(|s| s.due_at);
                        // Cards without a due time come last.
                        match (due(a), due(b)) {
                            (Some(x), Some(y)) => x.cmp(&y),
                            (Some(_), None) => std::cmp::Ordering::Less,
                            (None, Some(_)) => std::cmp::Ordering::Greater,
                            (None, None) => std::cmp::Ordering::Equal,
                        }
                    }
                    SortKey::Created => a.created_at.cmp(&b.created_at),
                    SortKey::Updated => a.updated_at.cmp(&b.updated_at),
                    SortKey::Number => a.number.cmp(&b.number),
                    SortKey::Field(f) => {
                        let value = |c: &Card| c.fields.get(f).map(FieldValue::to_value);
                        value(a)
                            .partial_cmp(&value(b))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    }
                };
                let order = order.then(a.number.cmp(&b.number));
                if *descending {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        Some(ids)
    }

    /// Applies one event at `now` and returns what follows from it.
    pub fn step(&self, state: &mut State, event: Event, now: DateTime<Utc>) -> Outcome {
        let mut run = Run::new(self, state, now);
        run.plan_schedules(now);
        run.event(event);
        run.out
    }
}

/// One step in progress.
pub(crate) struct Run<'e, 's> {
    pub(crate) engine: &'e Engine,
    pub(crate) state: &'s mut State,
    pub(crate) now: DateTime<Utc>,
    pub(crate) out: Outcome,
    /// The inbound message of this step, if it started with one.
    pub(crate) message: Option<Inbound>,
    chain: VecDeque<(CardId, Fired, usize)>,
    /// How deep in a chain the rules now running are (0: started by the event).
    depth: usize,
    /// Which of the engine's text patterns the step's message matches.
    pub(crate) text_matches: std::cell::OnceCell<Option<regex::SetMatches>>,
    /// What scripts saw last, and for which card and change.
    pub(crate) script_vars: std::cell::RefCell<Option<((CardId, usize), eval::ScriptVars)>>,
    /// The answers of the atoms of rule conditions, while the card the
    /// rules look at does not change.
    pub(crate) memo: Memo,
}

impl<'e, 's> Run<'e, 's> {
    pub(crate) fn new(engine: &'e Engine, state: &'s mut State, now: DateTime<Utc>) -> Run<'e, 's> {
        Run {
            engine,
            state,
            now,
            out: Outcome::default(),
            message: None,
            chain: VecDeque::new(),
            depth: 0,
            script_vars: Default::default(),
            text_matches: Default::default(),
            memo: Memo::new(engine.max_atoms),
        }
    }
}

impl<'e> Run<'e, '_> {
    /// The index of a card's pipe in the workflow.
    pub(crate) fn pipe_index(&self, card: CardId) -> Option<usize> {
        let name = &self.state.cards[card].pipe;
        self.engine
            .workflow
            .pipes
            .iter()
            .position(|p| &p.name == name)
    }

    pub(crate) fn pipe(&self, card: CardId) -> &'e Pipe {
        let name = &self.state.cards[card].pipe;
        self.engine
            .workflow
            .pipe(name)
            .unwrap_or(&self.engine.workflow.pipes[0])
    }

    pub(crate) fn effect(&mut self, card: Option<CardId>, kind: EffectKind, cause: &Cause) {
        self.out.effects.push(Effect {
            card,
            kind,
            cause: cause.clone(),
        });
    }

    pub(crate) fn history(&mut self, card: CardId, what: String, cause: &Cause) {
        let c = &mut self.state.cards[card];
        c.updated_at = self.now;
        c.history.push(HistoryEntry {
            at: self.now,
            what,
            cause: cause.clone(),
        });
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Message(m) => self.inbound(m),
            Event::Agent {
                email,
                online,
                capacity,
            } => {
                let agent = self.state.agents.entry(email.clone()).or_insert(Agent {
                    email: email.clone(),
                    online: false,
                    capacity: 5,
                });
                if let Some(o) = online {
                    agent.online = o;
                }
                if let Some(c) = capacity {
                    agent.capacity = c;
                }
                assign::drain_queues(self);
            }
            Event::Reply { card, agent, body } if self.exists(card) => {
                let cause = Cause::Agent {
                    email: agent.clone(),
                };
                let to = self.state.cards[card].contact.clone();
                let (text, template) = match body {
                    ReplyBody::Text(t) => (Some(t), None),
                    ReplyBody::Template {
                        name,
                        language,
                        params,
                    } => (None, Some((name, language, params))),
                };
                self.send(card, text, template, &cause, &to);
            }
            Event::Move {
                card,
                agent,
                status,
            } if self.exists(card) => {
                self.move_card(card, &status, &Cause::Agent { email: agent });
            }
            Event::Set {
                card,
                agent,
                fields,
            } if self.exists(card) => {
                let cause = Cause::Agent { email: agent };
                for (name, json) in fields {
                    match eval::field_from_json(self.pipe(card), &name, &json) {
                        Ok(v) => self.set_field(card, &name, v, &cause),
                        Err(reason) => self.effect(
                            Some(card),
                            EffectKind::Refused {
                                what: format!("set {name}"),
                                reason,
                            },
                            &cause,
                        ),
                    }
                }
            }
            Event::Assign { card, agent, to } if self.exists(card) => {
                let cause = Cause::Agent { email: agent };
                match to {
                    AssignTo::Agent(a) => assign::to_agent(self, card, &a, &cause),
                    AssignTo::Team(t) => {
                        assign::to_team(self, card, &t, Default::default(), &cause)
                    }
                }
            }
            Event::Undeliverable {
                card,
                message,
                reason,
                window_closed,
            } if self.exists(card) => self.undeliverable(card, &message, reason, window_closed),
            Event::Undeliverable { .. } => {}
            Event::Reply { card, agent, .. }
            | Event::Move { card, agent, .. }
            | Event::Set { card, agent, .. }
            | Event::Assign { card, agent, .. } => {
                let cause = Cause::Agent { email: agent };
                let reason = format!("there is no card {card}");
                self.effect(
                    None,
                    EffectKind::Refused {
                        what: "change a card".into(),
                        reason,
                    },
                    &cause,
                );
            }
        }
        self.run_chain();
    }

    /// The first time the engine sees the clock, each schedule's next run
    /// becomes a timer; after that, each run plans the next.
    fn plan_schedules(&mut self, now: DateTime<Utc>) {
        if self.state.now.is_some_and(|t| t >= now) {
            return;
        }
        let first = self.state.now.is_none();
        self.state.now = Some(now);
        if !first {
            return;
        }
        for p in 0..self.engine.workflow.pipes.len() {
            for i in 0..self.engine.workflow.pipes[p].schedules.len() {
                self.plan_schedule(p, i, now);
            }
        }
    }

    fn plan_schedule(&mut self, pipe: usize, index: usize, after: DateTime<Utc>) {
        let p = &self.engine.workflow.pipes[pipe];
        let local = after.with_timezone(&p.timezone);
        if let Some(next) = p.schedules[index].schedule.after(&local).next() {
            let at = next.with_timezone(&Utc);
            self.state.timers.insert(Timer {
                at,
                card: NO_CARD,
                kind: TimerKind::Schedule { pipe, index },
            });
        }
    }

    /// A pipe's schedule runs: once for the pipe, or for each matching card.
    fn run_schedule(&mut self, pipe: usize, index: usize) {
        self.plan_schedule(pipe, index, self.now);
        let engine = self.engine;
        let p = &engine.workflow.pipes[pipe];
        let schedule = &p.schedules[index];
        let cause = Cause::Timer {
            what: format!("schedule \"{}\" at {}", schedule.cron, schedule.origin),
        };
        let Some(condition) = &schedule.condition else {
            for action in &schedule.actions {
                if let Action::Notify { to, text } = action {
                    let Some(t) = eval::render_in(self, p, None, &text.source, &cause) else {
                        continue;
                    };
                    let recipients = match to {
                        NotifyTarget::Team(team) => {
                            p.team(team).map(|t| t.members.clone()).unwrap_or_default()
                        }
                        NotifyTarget::Agent(a) => vec![a.clone()],
                        _ => vec![format!("managers of {}", p.name)],
                    };
                    self.effect(
                        None,
                        EffectKind::Notify {
                            to: recipients,
                            text: t,
                        },
                        &cause,
                    );
                }
            }
            return;
        };
        let cards: Vec<CardId> = self
            .state
            .cards
            .iter()
            .filter(|c| c.pipe == p.name && c.open)
            .map(|c| c.id)
            .collect();
        for card in cards {
            match eval::condition(self, card, condition, false) {
                Ok(None) => {
                    for action in &schedule.actions {
                        self.action(card, action, &cause);
                    }
                }
                Ok(Some(_)) => {}
                Err(failure) => {
                    self.effect(Some(card), EffectKind::Failed { what: failure }, &cause)
                }
            }
        }
    }

    /// A timer fell due.
    fn fire(&mut self, timer: Timer) {
        if let TimerKind::Schedule { pipe, index } = timer.kind {
            self.run_schedule(pipe, index);
            return;
        }
        let card = timer.card;
        if card >= self.state.cards.len() {
            return;
        }
        let fired = match timer.kind {
            TimerKind::SlaWarning(kind) | TimerKind::SlaBreach(kind) => {
                let breach = matches!(timer.kind, TimerKind::SlaBreach(_));
                let state = if breach { "breached" } else { "warning" };
                let cause = Cause::Timer {
                    what: format!("SLA `{}` {state}", kind.name()),
                };
                let clocks = &mut self.state.cards[card].clocks;
                if let Some(c) = clocks
                    .iter_mut()
                    .rfind(|c| c.kind == kind && c.running_since.is_some())
                {
                    c.state = state;
                    if !breach {
                        c.warn_at = None;
                    }
                }
                self.refresh_view(card);
                self.history(card, format!("SLA `{}` {state}", kind.name()), &cause);
                let kind_name = kind.name().to_string();
                self.effect(
                    Some(card),
                    EffectKind::Sla {
                        kind: kind_name,
                        state: state.into(),
                    },
                    &cause,
                );
                if breach {
                    Fired::SlaBreached(kind)
                } else {
                    Fired::SlaWarning(kind)
                }
            }
            TimerKind::Idle(secs) => {
                self.state.cards[card].timers.retain(|t| t != &timer);
                Fired::Idle(secs)
            }
            TimerKind::WindowClosing(secs) => {
                self.state.cards[card].timers.retain(|t| t != &timer);
                Fired::WindowClosing(secs)
            }
            TimerKind::Schedule { .. } => return,
        };
        self.chain.push_back((card, fired, 0));
    }

    fn exists(&self, card: CardId) -> bool {
        card < self.state.cards.len()
    }

    /// A message from a customer: joins their open card, or opens one.
    fn inbound(&mut self, m: Inbound) {
        let digits: String = m.to.chars().filter(char::is_ascii_digit).collect();
        let Some(pipe) = self.engine.workflow.pipe_for_number(&digits) else {
            let reason = format!("no pipe is fed by the number {}", m.to);
            self.effect(
                None,
                EffectKind::Refused {
                    what: "take a message".into(),
                    reason,
                },
                &Cause::Customer,
            );
            return;
        };
        let pipe_name = pipe.name.clone();
        let contact = self
            .state
            .contacts
            .entry(m.from.clone())
            .or_insert_with(|| Contact {
                wa_id: m.from.clone(),
                phone: format!("+{}", m.from),
                ..Contact::default()
            });
        if !m.name.is_empty() {
            contact.name = m.name.clone();
        }
        contact.window_closes_at = Some(self.now + WINDOW);
        let cause = Cause::Customer;
        let (card, created) = match self.state.open_card(&pipe_name, &m.from) {
            Some(c) => (c, false),
            None => (self.open_card(&pipe_name, &m.from), true),
        };
        let team_answered = self.state.cards[card].last_responder == Some(Responder::Team);
        let c = &mut self.state.cards[card];
        c.messages.push(Message {
            id: m.id.clone(),
            direction: Direction::In,
            kind: m.kind.clone(),
            text: m.text.clone(),
            at: self.now,
            status: None,
            author: None,
        });
        c.last_responder = Some(Responder::Customer);
        c.updated_at = self.now;
        self.effect(
            Some(card),
            EffectKind::MessageKept { id: m.id.clone() },
            &cause,
        );
        if team_answered {
            self.start_clock(card, SlaKind::NextResponse);
        }
        self.message_timers(card, true);
        self.message = Some(m);
        if created {
            self.chain.push_back((card, Fired::CardCreated, 0));
        }
        self.chain.push_back((card, Fired::MessageReceived, 0));
    }

    fn open_card(&mut self, pipe_name: &str, wa_id: &str) -> CardId {
        let pipe = self
            .engine
            .workflow
            .pipe(pipe_name)
            .unwrap_or(&self.engine.workflow.pipes[0]);
        let initial = pipe
            .initial_status()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let fields = pipe
            .fields
            .iter()
            .filter_map(|f| {
                f.default
                    .as_ref()
                    .and_then(FieldValue::from_value)
                    .map(|v| (f.name.clone(), v))
            })
            .collect();
        let number = self
            .state
            .last_number
            .entry(pipe_name.to_string())
            .or_insert(0);
        *number += 1;
        let id = self.state.cards.len();
        self.state.cards.push(Card {
            id,
            pipe: pipe_name.to_string(),
            number: *number,
            contact: wa_id.to_string(),
            status: initial.clone(),
            open: true,
            assignee: None,
            team: None,
            fields,
            messages: Vec::new(),
            history: Vec::new(),
            created_at: self.now,
            updated_at: self.now,
            last_responder: None,
            template_needed: false,
            sla: None,
            clocks: Vec::new(),
            last_message_at: None,
            first_reply_at: None,
            closed_at: None,
            timers: Vec::new(),
        });
        let number = *number;
        self.state
            .by_contact
            .entry(wa_id.to_string())
            .or_default()
            .push(id);
        self.effect(
            Some(id),
            EffectKind::CardOpened {
                number,
                pipe: pipe_name.to_string(),
            },
            &Cause::Customer,
        );
        self.history(id, format!("opened in `{initial}`"), &Cause::Customer);
        self.start_clock(id, SlaKind::FirstResponse);
        self.start_clock(id, SlaKind::Resolution);
        id
    }

    /// Runs the rules that the queued changes start, in order, each rule
    /// seeing what the ones before it did.
    pub(crate) fn run_chain(&mut self) {
        while let Some((card, fired, depth)) = self.chain.pop_front() {
            self.depth = depth;
            let engine = self.engine;
            let Some(p) = self.pipe_index(card) else {
                continue;
            };
            let (pipe, plan) = (&engine.workflow.pipes[p], &engine.plans[p]);
            // Another card, or the same one changed since: atoms start over.
            self.memo.forget();
            let explain = engine.explain;
            let candidates = plan.rules_for(&fired);
            if candidates.is_empty() {
                continue;
            }
            let answers = std::rc::Rc::clone(self.memo.answers());
            let mut next = 0;
            while next < candidates.len() {
                // Without "why not", a rule whose guard is false is passed
                // over: it would not fire, run no script and leave no trace.
                if !explain {
                    let skipped = self.memo.known_false(&candidates[next..], &answers);
                    if cfg!(debug_assertions) {
                        for c in &candidates[next..next + skipped] {
                            self.check_passed_over(card, &pipe.rules[c.rule]);
                        }
                    }
                    next += skipped;
                    if next == candidates.len() {
                        break;
                    }
                }
                let Candidate { rule: i, guard } = candidates[next];
                next += 1;
                if !explain
                    && guard != NO_GUARD
                    && !eval::guards_hold(self, card, plan, &plan.guards[i])
                {
                    if cfg!(debug_assertions) {
                        self.check_passed_over(card, &pipe.rules[i]);
                    }
                    continue;
                }
                let condition = match (&pipe.rules[i].condition, &plan.conditions[i]) {
                    (Some(c), Some(n)) => Some((c, n)),
                    _ => None,
                };
                self.try_rule(card, &pipe.rules[i], plan, condition);
            }
        }
    }

    fn try_rule(
        &mut self,
        card: CardId,
        rule: &Rule,
        plan: &PipePlan,
        condition: Option<(&Condition, &Node)>,
    ) {
        let explain = self.engine.explain;
        let verdict = match condition {
            None => Ok(None),
            Some((c, n)) => eval::rule_condition(self, card, plan, c, n, explain),
        };
        if cfg!(debug_assertions) {
            // The plan decides as the plain evaluation does (which runs the
            // scripts again: they read, they do not change anything).
            if let Some((c, _)) = condition {
                let plain = eval::condition(self, card, c, explain);
                assert_eq!(verdict, plain, "rule `{}`: the plan disagrees", rule.name);
            }
        }
        if !matches!(verdict, Ok(Some(_))) {
            // The rule fires or failed: the card changes, atoms start over.
            self.memo.forget();
        }
        let (fired, reason) = match verdict {
            Ok(None) => (true, "its condition holds".to_string()),
            // Without explaining, a rule that did not fire leaves no trace.
            Ok(Some(_)) if !explain => return,
            Ok(Some(why)) => (false, why),
            Err(failure) => {
                let cause = Cause::Rule {
                    name: rule.name.clone(),
                    at: rule.origin.to_string(),
                };
                self.effect(
                    Some(card),
                    EffectKind::Failed {
                        what: failure.clone(),
                    },
                    &cause,
                );
                self.history(
                    card,
                    format!("rule `{}` did not run: {failure}", rule.name),
                    &cause,
                );
                (false, failure)
            }
        };
        let origin = rule.origin.to_string();
        self.out.log.push(LogEntry {
            at: self.now,
            card: Some(card),
            rule: rule.name.clone(),
            origin: origin.clone(),
            fired,
            reason,
        });
        if !fired {
            return;
        }
        let cause = Cause::Rule {
            name: rule.name.clone(),
            at: origin,
        };
        for action in &rule.actions {
            self.action(card, action, &cause);
        }
        self.memo.forget();
    }

    /// Checks (in debug builds) that a rule the server path passed over by
    /// its guards would not have fired, nor failed.
    fn check_passed_over(&self, card: CardId, rule: &Rule) {
        if let Some(c) = &rule.condition {
            let plain = eval::condition(self, card, c, false);
            assert!(
                matches!(plain, Ok(Some(_))),
                "rule `{}` was passed over, but its condition gives {plain:?}",
                rule.name
            );
        }
    }

    /// Queues the rules a change starts, unless the chain is too long.
    pub(crate) fn started(&mut self, card: CardId, fired_by: &Cause, what: FiredKind) {
        let fired = match what {
            FiredKind::Status(s) => Fired::StatusChanged(s),
            FiredKind::Field(f) => Fired::FieldChanged(f),
            FiredKind::Assigned => Fired::CardAssigned,
            FiredKind::Sent => Fired::MessageSent,
        };
        let next = if matches!(fired_by, Cause::Rule { .. }) {
            self.depth + 1
        } else {
            self.depth
        };
        if next > MAX_CHAIN {
            if !self
                .out
                .effects
                .iter()
                .any(|e| e.card == Some(card) && matches!(e.kind, EffectKind::ChainCut { .. }))
            {
                self.effect(Some(card), EffectKind::ChainCut { depth: next }, fired_by);
                self.history(
                    card,
                    format!("a chain of {MAX_CHAIN} rules starting each other was cut off here; the workflow may loop"),
                    fired_by,
                );
            }
            return;
        }
        self.chain.push_back((card, fired, next));
    }

    fn action(&mut self, card: CardId, action: &Action, cause: &Cause) {
        match action {
            Action::Assign {
                target,
                mode,
                available,
                sticky,
            } => {
                let how = assign::How {
                    mode: *mode,
                    available: *available,
                    sticky: *sticky,
                };
                assign::by_rule(self, card, target, how, cause);
            }
            Action::Unassign => assign::unassign(self, card, cause),
            Action::Set { field, value } => {
                let value =
                    match value {
                        SetValue::Value(v) => Ok(FieldValue::from_value(v)),
                        SetValue::Subject(s) => Ok(eval::subject_value(self, card, s)
                            .and_then(|v| FieldValue::from_value(&v))),
                        SetValue::Script(script) => eval::script_value(self, card, script),
                    };
                match value.and_then(|v| eval::fit_field(self.pipe(card), field, v)) {
                    Ok(v) => self.set_field(card, field, v, cause),
                    Err(failure) => {
                        self.effect(
                            Some(card),
                            EffectKind::Failed {
                                what: failure.clone(),
                            },
                            cause,
                        );
                        self.history(card, format!("could not set `{field}`: {failure}"), cause);
                    }
                }
            }
            Action::Move(to) => {
                self.move_card(card, to, cause);
            }
            Action::Reply(text) => {
                let to = self.state.cards[card].contact.clone();
                if let Some(t) = eval::render(self, card, &text.source, cause) {
                    self.send(card, Some(t), None, cause, &to);
                }
            }
            Action::ReplyTemplate {
                name,
                language,
                params,
            } => {
                let to = self.state.cards[card].contact.clone();
                let mut ps = Vec::new();
                for p in params {
                    match eval::render(self, card, &p.source, cause) {
                        Some(t) => ps.push(t),
                        None => return,
                    }
                }
                self.send(
                    card,
                    None,
                    Some((name.clone(), language.clone(), ps)),
                    cause,
                    &to,
                );
            }
            Action::Note(text) => {
                if let Some(t) = eval::render(self, card, &text.source, cause) {
                    self.history(card, format!("note: {t}"), cause);
                    self.effect(Some(card), EffectKind::Note { text: t }, cause);
                }
            }
            Action::Notify { to, text } => {
                let Some(t) = eval::render(self, card, &text.source, cause) else {
                    return;
                };
                let pipe = self.pipe(card);
                let recipients = match to {
                    NotifyTarget::Team(team) => pipe
                        .team(team)
                        .map(|t| t.members.clone())
                        .unwrap_or_default(),
                    NotifyTarget::Agent(a) => vec![a.clone()],
                    NotifyTarget::Manager => vec![format!("managers of {}", pipe.name)],
                    NotifyTarget::Assignee => {
                        self.state.cards[card].assignee.iter().cloned().collect()
                    }
                };
                if recipients.is_empty() {
                    self.history(
                        card,
                        "nobody to notify: the card has no assignee".into(),
                        cause,
                    );
                } else {
                    self.effect(
                        Some(card),
                        EffectKind::Notify {
                            to: recipients,
                            text: t,
                        },
                        cause,
                    );
                }
            }
            Action::Webhook(url) => {
                self.effect(Some(card), EffectKind::Webhook { url: url.clone() }, cause)
            }
        }
    }

    /// Sets a field and starts the rules that watch it.
    fn set_field(&mut self, card: CardId, field: &str, value: Option<FieldValue>, cause: &Cause) {
        if self.change_field(card, field, value, cause) {
            self.started(card, cause, FiredKind::Field(field.to_string()));
        }
    }

    fn change_field(
        &mut self,
        card: CardId,
        field: &str,
        value: Option<FieldValue>,
        cause: &Cause,
    ) -> bool {
        let old = self.state.cards[card].fields.get(field).cloned();
        if old == value {
            return false;
        }
        let json =
            |v: &Option<FieldValue>| serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
        let (from, to) = (json(&old), json(&value));
        match value {
            Some(v) => self.state.cards[card].fields.insert(field.to_string(), v),
            None => self.state.cards[card].fields.remove(field),
        };
        self.clocks_follow_fields(card);
        self.history(card, format!("`{field}` set to {to} (was {from})"), cause);
        self.effect(
            Some(card),
            EffectKind::FieldSet {
                field: field.to_string(),
                from,
                to,
            },
            cause,
        );
        true
    }

    /// Moves a card if the flow allows it; says why not otherwise.
    pub(crate) fn move_card(&mut self, card: CardId, to: &str, cause: &Cause) -> bool {
        let from = self.state.cards[card].status.clone();
        if from == to {
            return false;
        }
        let pipe = self.pipe(card);
        let Some(target) = pipe.status(to) else {
            let reason = format!("pipe `{}` has no status `{to}`", pipe.name);
            self.effect(
                Some(card),
                EffectKind::Refused {
                    what: format!("move to {to}"),
                    reason,
                },
                cause,
            );
            return false;
        };
        if !pipe.allows_move(&from, to) {
            let allowed = pipe.moves_from(&from);
            let reason = if allowed.is_empty() {
                format!("the flow allows no move out of `{from}`")
            } else {
                format!("the flow does not allow `{from}` -> `{to}`; from `{from}` a card can go to: {}", allowed.join(", "))
            };
            self.history(card, format!("move to `{to}` refused: {reason}"), cause);
            self.effect(
                Some(card),
                EffectKind::Refused {
                    what: format!("move to {to}"),
                    reason,
                },
                cause,
            );
            return false;
        }
        let open = target.kind.is_open_work();
        assign::set_open(self, card, open);
        self.state.cards[card].status = to.to_string();
        self.clocks_follow_status(card);
        self.history(card, format!("moved from `{from}` to `{to}`"), cause);
        self.effect(
            Some(card),
            EffectKind::Moved {
                from,
                to: to.to_string(),
            },
            cause,
        );
        self.started(card, cause, FiredKind::Status(to.to_string()));
        true
    }

    /// WhatsApp refused a message for good: the card says so, and when the
    /// window was closed, that only a template can go.
    fn undeliverable(&mut self, card: CardId, message: &str, reason: String, window_closed: bool) {
        let cause = Cause::Engine {
            reason: "WhatsApp refused the message".into(),
        };
        if let Some(m) = self.state.cards[card]
            .messages
            .iter_mut()
            .find(|m| m.id == message)
        {
            m.status = Some("failed".into());
        }
        if window_closed {
            self.state.cards[card].template_needed = true;
            let contact = self.state.cards[card].contact.clone();
            if let Some(c) = self.state.contacts.get_mut(&contact) {
                c.window_closes_at = Some(self.now);
            }
        }
        self.history(card, format!("message not delivered: {reason}"), &cause);
        self.effect(
            Some(card),
            EffectKind::Failed {
                what: format!("message not delivered: {reason}"),
            },
            &cause,
        );
    }

    /// Sends a reply: free text only inside the 24-hour window, a template always.
    fn send(
        &mut self,
        card: CardId,
        text: Option<String>,
        template: Option<(String, String, Vec<String>)>,
        cause: &Cause,
        to: &str,
    ) {
        let window = self.state.contacts.get(to).and_then(|c| c.window_closes_at);
        if template.is_none() && window.is_none_or(|w| self.now >= w) {
            let reason =
                "the 24-hour window to answer freely has closed; send an approved template"
                    .to_string();
            self.state.cards[card].template_needed = true;
            self.history(card, format!("reply not sent: {reason}"), cause);
            self.effect(
                Some(card),
                EffectKind::Refused {
                    what: "reply".into(),
                    reason,
                },
                cause,
            );
            return;
        }
        let (name, language, params) = match template {
            Some((n, l, p)) => (Some(n), Some(l), p),
            None => (None, None, Vec::new()),
        };
        let c = &mut self.state.cards[card];
        let id = format!("out-{}-{}", c.number, c.messages.len() + 1);
        c.messages.push(Message {
            id: id.clone(),
            direction: Direction::Out,
            kind: if name.is_some() {
                "template".into()
            } else {
                "text".into()
            },
            text: text.clone().or_else(|| name.clone()),
            at: self.now,
            status: Some("queued".into()),
            author: Some(cause.to_string()),
        });
        // An automatic reply (a rule's) is not the team answering: the
        // customer still waits (yellow) until a person writes.
        if matches!(cause, Cause::Agent { .. }) {
            c.last_responder = Some(Responder::Team);
            c.first_reply_at.get_or_insert(self.now);
        }
        if name.is_some() {
            c.template_needed = false;
        }
        if let Cause::Agent { email } = cause {
            let pipe = c.pipe.clone();
            if let Some(contact) = self.state.contacts.get_mut(to) {
                contact.last_agent.insert(pipe, email.clone());
            }
        }
        if matches!(cause, Cause::Agent { .. }) {
            self.stop_clock(card, SlaKind::FirstResponse);
            self.stop_clock(card, SlaKind::NextResponse);
        }
        self.message_timers(card, false);
        self.history(card, "reply sent".into(), cause);
        self.effect(
            Some(card),
            EffectKind::Send {
                message: id,
                to: to.to_string(),
                text,
                template: name,
                language,
                params,
            },
            cause,
        );
        self.started(card, cause, FiredKind::Sent);
    }
}

/// Which change started rules (for [`Run::started`]).
pub(crate) enum FiredKind {
    Status(String),
    Field(String),
    Assigned,
    Sent,
}

/// The patterns that rules test `message.text` with, as one case-insensitive
/// set, and each pattern's place in it.
fn text_pattern_set(
    workflow: &Workflow,
) -> Option<(regex::RegexSet, std::collections::HashMap<String, usize>)> {
    use switchboard_lang::model::{Condition, Op, Operand, Subject};
    fn walk(c: &Condition, out: &mut Vec<String>) {
        match c {
            Condition::And(a, b) | Condition::Or(a, b) => {
                walk(a, out);
                walk(b, out);
            }
            Condition::Not(a) => walk(a, out),
            Condition::Compare {
                subject: Subject::Message(m),
                op: Op::Matches,
                value: Operand::Regex(p),
            } if m == "text" && !out.iter().any(|s| s == p.source()) => {
                out.push(p.source().to_string());
            }
            _ => {}
        }
    }
    let mut sources = Vec::new();
    for pipe in &workflow.pipes {
        for rule in &pipe.rules {
            if let Some(c) = &rule.condition {
                walk(c, &mut sources);
            }
        }
    }
    if sources.len() < 2 {
        return None;
    }
    let set = regex::RegexSetBuilder::new(&sources)
        .case_insensitive(true)
        .size_limit(32 << 20)
        .build()
        .ok()?;
    Some((
        set,
        sources
            .into_iter()
            .enumerate()
            .map(|(i, s)| (s, i))
            .collect(),
    ))
}

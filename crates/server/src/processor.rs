//! The engine's loop. One server at a time holds the `engine` lease and runs
//! it; the engine's state lives in memory, in this task only.
//!
//! Every input the engine sees (a message, an agent's action, the clock
//! reaching a timer, a new workflow version) is appended to the
//! `engine_events` log in the same transaction as everything it caused
//! (cards, messages, history, queued replies) and the inbox rows it
//! consumed. The engine is deterministic, so replaying the log rebuilds the
//! state exactly: after a crash the uncommitted batch is simply done again,
//! and a timer fires late but once.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::workflows::{self, WorkflowFiles};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_engine::state::{CardId, Direction, Responder};
use switchboard_engine::{view, EffectKind, Engine, Event, Inbound, Outcome, State};
use switchboard_lang::model::Workflow;
use switchboard_store::{
    AlertRow, Batch, CardRow, ContactRow, HistoryRow, InboxRow, MessageRow, OutboxNew, SearchRow,
    StatusOutcome, StatusRow, Store,
};
use switchboard_whatsapp::graph::{Outgoing, SendRequest};
use switchboard_whatsapp::webhook::{self, InboundMessage, StatusUpdate, Update};
use tokio::sync::{mpsc, oneshot, watch, Notify};

/// What other tasks ask of the engine.
pub enum Command {
    /// Read the workflow folder again; answer what happened or why not.
    Reload(oneshot::Sender<Result<String, String>>),
    /// An agent's action (reply, move, assignment, fields); answers what the
    /// engine did to the card, once it is stored.
    Act {
        /// The action.
        event: Event,
        /// What the engine did.
        answer: oneshot::Sender<Result<Vec<EffectKind>, String>>,
    },
    /// The agents as the engine knows them (online, capacity, open cards).
    Agents(oneshot::Sender<Vec<AgentState>>),
    /// The `phone_number_id` a pipe's messages go out through, if known.
    NumberId {
        /// The pipe.
        pipe: String,
        /// The id.
        answer: oneshot::Sender<Option<String>>,
    },
    /// The cards a view of the workflow shows, in its order (`None`: no
    /// such view).
    View {
        /// The pipe.
        pipe: String,
        /// The view's name.
        view: String,
        /// The card ids.
        answer: oneshot::Sender<Option<Vec<i64>>>,
    },
    /// WhatsApp refused a message for good.
    Undeliverable {
        /// The card.
        card: i64,
        /// The card message.
        message: String,
        /// Why.
        reason: String,
        /// Error 131047: the window is closed.
        window_closed: bool,
    },
}

/// An agent's availability and load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    /// E-mail.
    pub email: String,
    /// Online (else away).
    pub online: bool,
    /// Most open cards they take.
    pub capacity: u32,
    /// Open cards assigned to them now.
    pub load: u32,
}

/// One line of the engine's log.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Logged {
    /// From here on, this workflow version runs.
    Workflow { version: i64 },
    /// The clock reached the line's time: due timers fire.
    Tick,
    /// An input at the line's time (timers due by then fire first).
    Event {
        event: Event,
        /// The business number's `phone_number_id` a message came through.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
        /// Every identifier the message showed for its sender (wa_id,
        /// BSUID): they all name the contact the event uses.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        aliases: Vec<String>,
        /// The contact changed number (a `system` message): replies go to
        /// this identifier from now on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moved_to: Option<String>,
    },
    /// WhatsApp says a contact's identifier changed (a `user_id_update`
    /// change): `aliases` now name the contact `key` too.
    Renamed {
        key: String,
        aliases: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moved_to: Option<String>,
    },
}

/// Most inbox rows one batch takes.
const BATCH: i64 = 500;
/// How often the inbox is looked at when nothing wakes the engine (other
/// servers may have stored webhooks).
const POLL: Duration = Duration::from_millis(250);
/// How long the engine lets webhooks gather after being woken.
const GATHER: Duration = Duration::from_millis(5);
/// The lease's name.
const LEASE: &str = "engine";

/// The engine task.
pub struct Processor {
    store: Store,
    config: Arc<Config>,
    holder: String,
    metrics: Arc<Metrics>,
    /// Whether this server runs the engine now (the sender follows it).
    active: Arc<AtomicBool>,
    sender_wake: Arc<Notify>,
    progress: Arc<watch::Sender<u64>>,
    /// The running workflow, for the API (rights, pipes).
    shared: Arc<watch::Sender<Option<Arc<Workflow>>>>,
    engine: Option<Engine>,
    files: WorkflowFiles,
    state: State,
    /// Inbound wamids already applied.
    seen: HashSet<String>,
    /// Each identifier a contact has shown (wa_id, BSUID) to the one key
    /// the engine knows them by: the first seen, a phone's wa_id when the
    /// first message showed both.
    identities: HashMap<String, String>,
    /// A contact's business-scoped user id, by the engine's key.
    bsuids: HashMap<String, String>,
    /// Where replies to a contact go when it is not its key: the new number
    /// (or BSUID) of a contact who changed it.
    addresses: HashMap<String, String>,
    /// Each contact as last written: (name, phone, BSUID).
    contacts_written: HashMap<String, (String, String, Option<String>)>,
    /// Per card: how many of its messages and history entries are stored.
    persisted: Vec<(usize, usize)>,
    /// The `phone_number_id` each pipe's replies go out through.
    numbers: BTreeMap<String, String>,
    batch: Batch,
    touched: BTreeSet<CardId>,
    /// Raw JSON and WhatsApp timestamp of this batch's inbound messages.
    raws: HashMap<String, (String, i64)>,
    lease_until: i64,
}

/// Now, to the millisecond (the log keeps milliseconds: replay must see the
/// same instants the live engine saw).
fn clock_now() -> DateTime<Utc> {
    ms_to_time(crate::now_ms())
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Processor {
    /// A processor that has not taken the lease yet.
    pub(crate) fn new(
        store: Store,
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        active: Arc<AtomicBool>,
        sender_wake: Arc<Notify>,
        progress: Arc<watch::Sender<u64>>,
        shared: Arc<watch::Sender<Option<Arc<Workflow>>>>,
    ) -> Processor {
        let holder = format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "switchboard".into()),
            std::process::id(),
            crate::now_ms()
        );
        Processor {
            store,
            config,
            holder,
            metrics,
            active,
            sender_wake,
            progress,
            shared,
            engine: None,
            files: WorkflowFiles::default(),
            state: State::default(),
            seen: HashSet::new(),
            identities: HashMap::new(),
            bsuids: HashMap::new(),
            addresses: HashMap::new(),
            contacts_written: HashMap::new(),
            persisted: Vec::new(),
            numbers: BTreeMap::new(),
            batch: Batch::default(),
            touched: BTreeSet::new(),
            raws: HashMap::new(),
            lease_until: 0,
        }
    }

    /// Runs until shutdown.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        wake: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
        ready: oneshot::Sender<()>,
    ) {
        // Start-up waits for the first attempt to run the engine.
        let mut ready = Some(ready);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let active = self.ensure_active().await;
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
            if !active {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.lease / 3) => {}
                    _ = shutdown.changed() => {}
                    c = commands.recv() => match c {
                        Some(Command::Reload(answer)) => {
                            let _ = answer.send(Err("this server does not run the engine now; reload the one that does".into()));
                        }
                        Some(Command::Act { answer, .. }) => {
                            let _ = answer.send(Err("this server does not run the engine now".into()));
                        }
                        Some(Command::Agents(answer)) => {
                            let _ = answer.send(Vec::new());
                        }
                        Some(Command::View { answer, .. }) => {
                            let _ = answer.send(None);
                        }
                        Some(Command::NumberId { answer, .. }) => {
                            let _ = answer.send(None);
                        }
                        Some(Command::Undeliverable { .. }) => {}
                        None => break,
                    },
                }
                continue;
            }
            let more = match self.work().await {
                Ok(more) => more,
                Err(e) => {
                    self.fail(&e).await;
                    continue;
                }
            };
            if more {
                continue;
            }
            let wait = self.next_wait();
            tokio::select! {
                _ = wake.notified() => {
                    // Under load, let a few milliseconds of webhooks gather:
                    // one batch of many events costs far fewer statements
                    // (and fsyncs) than many batches of a few.
                    if !GATHER.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(GATHER) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
                c = commands.recv() => match c {
                    Some(c) => {
                        if let Err(e) = self.command(c).await {
                            self.fail(&e).await;
                        }
                    }
                    None => break,
                },
            }
        }
        if self.engine.is_some() {
            if let Err(e) = self.commit(Durability::OnDisk).await {
                tracing::error!(error = %e, "the last batch could not be stored; it will be done again at the next start");
            }
            let _ = self.store.release_lease(LEASE, &self.holder).await;
        }
        self.active.store(false, Ordering::SeqCst);
        tracing::info!("engine stopped");
    }

    /// Something went wrong with the database: forget the in-memory state
    /// (it may be ahead of what is stored) and start again from the log.
    async fn fail(&mut self, e: &str) {
        tracing::error!(error = %e, "engine batch failed; the engine restarts from its stored log");
        self.deactivate();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    fn deactivate(&mut self) {
        self.active.store(false, Ordering::SeqCst);
        self.engine = None;
        self.state = State::default();
        self.seen.clear();
        self.identities.clear();
        self.bsuids.clear();
        self.addresses.clear();
        self.contacts_written.clear();
        self.persisted.clear();
        self.numbers.clear();
        self.batch = Batch::default();
        self.touched.clear();
        self.raws.clear();
        self.files = WorkflowFiles::default();
    }

    /// Takes the lease and rebuilds the state if this server does not run
    /// the engine yet. False while another server holds the lease.
    async fn ensure_active(&mut self) -> bool {
        if self.engine.is_some() {
            return true;
        }
        let now = crate::now_ms();
        let until = now + self.config.lease.as_millis() as i64;
        match self.store.try_lease(LEASE, &self.holder, now, until).await {
            Ok(true) => self.lease_until = until,
            Ok(false) => return false,
            Err(e) => {
                tracing::error!(error = %e, "cannot take the engine lease");
                return false;
            }
        }
        let started = std::time::Instant::now();
        if let Err(e) = self.replay().await {
            tracing::error!(error = %e, "cannot replay the engine log");
            self.deactivate();
            return false;
        }
        tracing::info!(
            cards = self.state.cards.len(),
            ms = started.elapsed().as_millis() as u64,
            "engine state rebuilt from its log"
        );
        match WorkflowFiles::read(&self.config.workflows) {
            Ok((files, workflow)) => {
                if let Err(e) = self.adopt(files, workflow).await {
                    tracing::error!(error = %e, "the workflow on disk was not taken");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "the workflow on disk does not check; the stored version keeps running")
            }
        }
        if self.engine.is_none() {
            tracing::error!("no workflow can run: fix the workflow files");
            return false;
        }
        if let Err(e) = self.store.release_claims(crate::now_ms()).await {
            tracing::error!(error = %e, "cannot take over the outbox");
        }
        self.active.store(true, Ordering::SeqCst);
        self.sender_wake.notify_one();
        true
    }

    /// Rebuilds the state from the log.
    async fn replay(&mut self) -> Result<(), String> {
        self.deactivate();
        let mut seq = 0;
        loop {
            let rows = self
                .store
                .events_after(seq, 5_000)
                .await
                .map_err(|e| e.to_string())?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                seq = row.seq;
                let logged: Logged = serde_json::from_str(&row.event)
                    .map_err(|e| format!("engine log line {} is damaged: {e}", row.seq))?;
                let at = ms_to_time(row.at);
                match logged {
                    Logged::Workflow { version } => {
                        let json = self
                            .store
                            .workflow_version(version)
                            .await
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| format!("workflow version {version} is missing"))?;
                        let files = WorkflowFiles::from_json(&json)?;
                        let workflow = files.check()?;
                        let _ = self.shared.send(Some(Arc::new(workflow.clone())));
                        let engine = Engine::new(workflow).with_explanations(false);
                        engine.adopt(&mut self.state, at);
                        self.engine = Some(engine);
                        self.files = files;
                    }
                    Logged::Tick => {
                        let engine = self
                            .engine
                            .as_ref()
                            .ok_or("the log starts without a workflow")?;
                        engine.advance(&mut self.state, at);
                    }
                    Logged::Renamed {
                        key,
                        aliases,
                        moved_to,
                    } => self.rename(&key, aliases, moved_to),
                    Logged::Event {
                        event,
                        via,
                        aliases,
                        moved_to,
                    } => {
                        if let Event::Message(m) = &event {
                            self.rename(&m.from, aliases, moved_to);
                        }
                        let engine = self
                            .engine
                            .as_ref()
                            .ok_or("the log starts without a workflow")?;
                        if let Event::Message(m) = &event {
                            self.seen.insert(m.id.clone());
                            if let (Some(via), Some(pipe)) = (via, pipe_of(engine, &m.to)) {
                                self.numbers.insert(pipe, via);
                            }
                        }
                        engine.advance(&mut self.state, at);
                        engine.step(&mut self.state, event, at);
                    }
                }
            }
        }
        self.persisted = self
            .state
            .cards
            .iter()
            .map(|c| (c.messages.len(), c.history.len()))
            .collect();
        Ok(())
    }

    /// Makes a workflow the running one (at start when it differs from the
    /// stored one, and on reload).
    async fn adopt(
        &mut self,
        files: WorkflowFiles,
        workflow: switchboard_lang::model::Workflow,
    ) -> Result<String, String> {
        if self.engine.is_some() && files == self.files {
            return Ok("the workflow is unchanged".into());
        }
        if let Some(old) = &self.engine {
            let mut open: BTreeMap<String, usize> = BTreeMap::new();
            for c in self.state.cards.iter().filter(|c| c.open) {
                *open.entry(c.pipe.clone()).or_default() += 1;
            }
            if let Some(reason) = workflows::refuse_change(old.workflow(), &workflow, &open) {
                return Err(reason);
            }
        }
        let now = self.clock();
        let version = self
            .store
            .save_workflow_version(&files.hash(), &files.to_json(), now.timestamp_millis())
            .await
            .map_err(|e| e.to_string())?;
        self.log(now, &Logged::Workflow { version });
        let _ = self.shared.send(Some(Arc::new(workflow.clone())));
        let engine = Engine::new(workflow).with_explanations(false);
        let out = engine.adopt(&mut self.state, now);
        let pipes = engine.workflow().pipes.len();
        self.engine = Some(engine);
        self.files = files;
        self.absorb(out, now);
        if self.state.now.is_none() {
            // The first clock plans the schedules.
            self.log(now, &Logged::Tick);
            if let Some(engine) = &self.engine {
                let out = engine.advance(&mut self.state, now);
                self.absorb(out, now);
            }
        }
        let moved = self.batch.history.len();
        self.commit(Durability::OnDisk).await?;
        tracing::info!(version, pipes, "workflow version running");
        Ok(format!(
            "workflow version {version} runs: {pipes} pipes, {moved} cards moved"
        ))
    }

    async fn command(&mut self, c: Command) -> Result<(), String> {
        match c {
            Command::Reload(answer) => {
                let result = match WorkflowFiles::read(&self.config.workflows) {
                    Ok((files, workflow)) => self.adopt(files, workflow).await,
                    Err(diagnostics) => Err(format!(
                        "the workflow was not reloaded, it has errors:\n{diagnostics}"
                    )),
                };
                match &result {
                    Ok(m) => tracing::info!(result = %m, "reload"),
                    Err(e) => {
                        tracing::warn!(reason = %e, "reload refused; the running workflow stays")
                    }
                }
                let _ = answer.send(result);
                Ok(())
            }
            Command::Act { event, answer } => {
                let effects = self.apply(event, None);
                match self.commit(Durability::OnDisk).await {
                    Ok(()) => {
                        let _ = answer.send(Ok(effects));
                        Ok(())
                    }
                    Err(e) => {
                        let _ =
                            answer.send(Err("the change could not be stored; try again".into()));
                        Err(e)
                    }
                }
            }
            Command::NumberId { pipe, answer } => {
                let _ = answer.send(self.number_id(&pipe));
                Ok(())
            }
            Command::View { pipe, view, answer } => {
                let now = self.clock();
                let ids = self.engine.as_ref().and_then(|e| {
                    e.view(&mut self.state, &pipe, &view, now)
                        .map(|ids| ids.into_iter().map(|i| i as i64).collect())
                });
                let _ = answer.send(ids);
                Ok(())
            }
            Command::Agents(answer) => {
                let agents = self
                    .state
                    .agents
                    .values()
                    .map(|a| AgentState {
                        email: a.email.clone(),
                        online: a.online,
                        capacity: a.capacity,
                        load: self.state.load_of(&a.email),
                    })
                    .collect();
                let _ = answer.send(agents);
                Ok(())
            }
            Command::Undeliverable {
                card,
                message,
                reason,
                window_closed,
            } => {
                let Ok(card) = usize::try_from(card) else {
                    return Ok(());
                };
                self.apply(
                    Event::Undeliverable {
                        card,
                        message,
                        reason,
                        window_closed,
                    },
                    None,
                );
                self.commit(Durability::OnDisk).await
            }
        }
    }

    /// One round: renew the lease, take a batch of the inbox, fire due
    /// timers, store it all. True when more inbox waits.
    async fn work(&mut self) -> Result<bool, String> {
        let now = crate::now_ms();
        let lease = self.config.lease.as_millis() as i64;
        if self.lease_until - now < lease / 2 {
            let until = now + lease;
            if !self
                .store
                .try_lease(LEASE, &self.holder, now, until)
                .await
                .map_err(|e| e.to_string())?
            {
                tracing::warn!(
                    "the engine lease went to another server; this one stops running the engine"
                );
                self.deactivate();
                return Ok(false);
            }
            self.lease_until = until;
        }
        let rows = self
            .store
            .pending_inbox(BATCH)
            .await
            .map_err(|e| e.to_string())?;
        let more = rows.len() as i64 == BATCH;
        for row in rows {
            self.take(row).await?;
            // The engine's work is CPU: let the webhooks waiting on this
            // worker thread be answered between bodies.
            tokio::task::yield_now().await;
        }
        self.fire_timers();
        // Webhook bodies and timers: done again after a crash if lost.
        self.commit(Durability::Redoable).await?;
        Ok(more)
    }

    fn next_wait(&self) -> Duration {
        let now = crate::now_ms();
        match self.state.timers.first() {
            Some(t) => {
                let due = t.at.timestamp_millis() - now;
                Duration::from_millis(due.clamp(0, POLL.as_millis() as i64) as u64)
            }
            None => POLL,
        }
    }

    /// The engine's clock: now, never before what it has already seen.
    fn clock(&self) -> DateTime<Utc> {
        let now = clock_now();
        match self.state.now {
            Some(seen) if seen > now => seen,
            _ => now,
        }
    }

    fn log(&mut self, at: DateTime<Utc>, logged: &Logged) {
        let json = serde_json::to_string(logged).unwrap_or_default();
        self.batch.events.push((at.timestamp_millis(), json));
    }

    fn fire_timers(&mut self) {
        let now = self.clock();
        if self.engine.is_none() || self.state.timers.first().is_none_or(|t| t.at > now) {
            return;
        }
        self.log(now, &Logged::Tick);
        if let Some(engine) = &self.engine {
            let out = engine.advance(&mut self.state, now);
            self.absorb(out, now);
        }
    }

    /// Applies one input: due timers first, then the event. Returns what
    /// the event itself did.
    fn apply(&mut self, event: Event, via: Option<String>) -> Vec<EffectKind> {
        self.apply_as(event, via, Vec::new(), None)
    }

    /// [`Processor::apply`], recording the sender's identifiers with it.
    fn apply_as(
        &mut self,
        event: Event,
        via: Option<String>,
        aliases: Vec<String>,
        moved_to: Option<String>,
    ) -> Vec<EffectKind> {
        let now = self.clock();
        self.log(
            now,
            &Logged::Event {
                event: event.clone(),
                via,
                aliases,
                moved_to,
            },
        );
        let Some(engine) = &self.engine else {
            return Vec::new();
        };
        let timers = engine.advance(&mut self.state, now);
        let out = engine.step(&mut self.state, event, now);
        let effects = out.effects.iter().map(|e| e.kind.clone()).collect();
        self.absorb(timers, now);
        self.absorb(out, now);
        effects
    }

    /// One stored webhook body.
    async fn take(&mut self, row: InboxRow) -> Result<(), String> {
        let mut notes = Vec::new();
        match webhook::parse(&row.body) {
            Err(e) => {
                notes.push(format!("not a WhatsApp notification: {e}"));
                self.batch.alerts.push(AlertRow {
                    at: crate::now_ms(),
                    kind: "webhook_unreadable".into(),
                    detail: format!("webhook body {} is unreadable: {e}", row.id),
                });
            }
            Ok(n) => {
                let mut messages = Vec::new();
                for u in n.updates {
                    match u {
                        Update::Message(m) => messages.push(m),
                        Update::Status(s) => self.status(s).await?,
                        Update::Error { metadata, error } => {
                            self.batch.alerts.push(AlertRow {
                                at: crate::now_ms(),
                                kind: "whatsapp_error".into(),
                                detail: format!(
                                    "WhatsApp reports error {} ({}) for number id {}: {}{}",
                                    error.code,
                                    error.title,
                                    metadata.phone_number_id,
                                    error.message,
                                    error.details.map(|d| format!(" ({d})")).unwrap_or_default()
                                ),
                            });
                        }
                        Update::Other { field, raw } if field == "user_id_update" => {
                            if let Some(note) = self.user_id_update(&raw) {
                                notes.push(note);
                            }
                        }
                        Update::Other { field, .. } => {
                            notes.push(format!("a `{field}` change is kept raw, not acted on"));
                        }
                    }
                }
                // Per contact in WhatsApp's order (ties: arrival order).
                messages.sort_by_key(|m| m.timestamp);
                for m in messages {
                    if let Some(note) = self.inbound(m) {
                        notes.push(note);
                    }
                }
            }
        }
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        self.batch.inbox_done.push((row.id, note));
        Ok(())
    }

    /// A customer's message: to its card, through the engine.
    fn inbound(&mut self, m: InboundMessage) -> Option<String> {
        let engine = self.engine.as_ref()?;
        if self.seen.contains(&m.id) {
            Metrics::bump(&self.metrics.duplicate_messages);
            return None;
        }
        // One contact however WhatsApp names them: a username user may come
        // with only a BSUID, and later with their phone too.
        let ids: Vec<String> = [m.from.clone(), m.from_user_id.clone()]
            .into_iter()
            .flatten()
            .filter(|i| !i.is_empty())
            .collect();
        let Some(from) = ids
            .iter()
            .find_map(|i| self.identities.get(i).cloned())
            .or_else(|| ids.first().cloned())
        else {
            return Some(format!("message {} has no sender id; kept raw", m.id));
        };
        let mut digits: String = m
            .metadata
            .display_phone_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        // A number the workflow names by its phone_number_id wins over the
        // display number (api.md).
        if let Some(n) = engine
            .workflow()
            .pipes
            .iter()
            .flat_map(|p| &p.numbers)
            .find(|n| n.phone_number_id.as_deref() == Some(m.metadata.phone_number_id.as_str()))
        {
            digits = n.digits.clone();
        }
        let Some(pipe) = pipe_of(engine, &digits) else {
            self.batch.alerts.push(AlertRow {
                at: crate::now_ms(),
                kind: "unknown_number".into(),
                detail: format!(
                    "a message came to +{digits} (number id {}), which no pipe is fed by",
                    m.metadata.phone_number_id
                ),
            });
            return Some(format!(
                "message {} came to +{digits} (number id {}), which no pipe is fed by; kept raw",
                m.id, m.metadata.phone_number_id
            ));
        };
        self.seen.insert(m.id.clone());
        // A `system` message says the contact changed number or BSUID: the
        // new identifiers name the same contact, and replies follow them.
        let mut ids = ids;
        let mut moved_to = None;
        if m.kind == "system" {
            let system = &m.raw["system"];
            let new_wa_id = system["wa_id"].as_str().filter(|s| !s.is_empty());
            let new_user_id = system["user_id"].as_str().filter(|s| !s.is_empty());
            ids.extend(new_wa_id.into_iter().chain(new_user_id).map(String::from));
            moved_to = match system["type"].as_str() {
                Some("user_changed_number") | Some("customer_identity_changed")
                    if !is_bsuid(&from) =>
                {
                    new_wa_id.map(String::from)
                }
                Some(_) if is_bsuid(&from) => new_user_id.map(String::from),
                _ => None,
            };
        }
        self.rename(&from, ids.clone(), moved_to.clone());
        let via = m.metadata.phone_number_id.clone();
        self.numbers.insert(pipe, via.clone());
        self.raws
            .insert(m.id.clone(), (m.raw.to_string(), m.timestamp));
        Metrics::bump(&self.metrics.messages_processed);
        let name = m
            .name
            .clone()
            .or_else(|| m.username.clone().map(|u| format!("@{u}")));
        self.apply_as(
            Event::Message(Inbound {
                id: m.id,
                from,
                name: name.unwrap_or_default(),
                to: digits,
                kind: m.kind,
                text: m.text,
            }),
            (!via.is_empty()).then_some(via),
            ids,
            moved_to,
        );
        None
    }

    /// A `user_id_update` change: each entry's new BSUID names the contact
    /// its previous BSUID (or its wa_id) named. Returns a note for entries
    /// about contacts never seen.
    fn user_id_update(&mut self, value: &serde_json::Value) -> Option<String> {
        let mut unknown = Vec::new();
        for entry in value["user_id_update"].as_array().into_iter().flatten() {
            let previous = entry["user_id"]["previous"].as_str().unwrap_or_default();
            let current = entry["user_id"]["current"].as_str().unwrap_or_default();
            let wa_id = entry["wa_id"].as_str().unwrap_or_default();
            if current.is_empty() {
                unknown.push("an entry without `user_id.current`".to_string());
                continue;
            }
            let Some(key) = [previous, wa_id]
                .iter()
                .filter(|i| !i.is_empty())
                .find_map(|i| self.identities.get(*i).cloned())
            else {
                unknown.push(format!("{previous} (never seen)"));
                continue;
            };
            let moved_to = is_bsuid(&key).then(|| current.to_string());
            let aliases = vec![current.to_string()];
            let now = self.clock();
            self.log(
                now,
                &Logged::Renamed {
                    key: key.clone(),
                    aliases: aliases.clone(),
                    moved_to: moved_to.clone(),
                },
            );
            self.rename(&key, aliases, moved_to);
        }
        (!unknown.is_empty()).then(|| format!("user_id_update kept raw for {}", unknown.join(", ")))
    }

    /// Records identifiers of the contact `key`, and where replies go now.
    fn rename(&mut self, key: &str, aliases: Vec<String>, moved_to: Option<String>) {
        for a in aliases {
            self.remember(a, key);
        }
        if let Some(to) = moved_to {
            self.addresses.insert(key.to_string(), to);
        }
    }

    /// A delivery status: onto its message, never backwards.
    async fn status(&mut self, s: StatusUpdate) -> Result<(), String> {
        Metrics::bump(&self.metrics.statuses);
        let error = s.errors.first();
        let reason = error.map(|e| {
            format!(
                "{} ({}){}",
                e.title,
                e.code,
                e.details
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            )
        });
        let row = StatusRow {
            wamid: s.id.clone(),
            status: s.status.clone(),
            at: s.timestamp * 1000,
            reason: reason.clone(),
            callback: s.callback_data.clone(),
        };
        let outcome = self
            .store
            .apply_status(&row)
            .await
            .map_err(|e| e.to_string())?;
        // A status for a message whose send we could not confirm: it did go.
        if s.status != "failed" {
            if let Some(id) = s
                .callback_data
                .as_deref()
                .and_then(|c| c.parse::<i64>().ok())
            {
                self.store
                    .outbox_accepted(id, &s.id, crate::now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        // The status row is stored on its own, before the batch that tells
        // the card: after a crash that lost the batch, the status comes back
        // as a duplicate, and only the engine's state says whether the card
        // has heard of it.
        if s.status == "failed"
            && matches!(outcome, StatusOutcome::Applied | StatusOutcome::Duplicate)
        {
            if let Some((card, key)) = self
                .store
                .message_owner(&s.id)
                .await
                .map_err(|e| e.to_string())?
            {
                let told = |card: usize| {
                    self.state.cards.get(card).is_some_and(|c| {
                        c.messages
                            .iter()
                            .any(|m| m.id == key && m.status.as_deref() == Some("failed"))
                    })
                };
                if let Some(card) = usize::try_from(card).ok().filter(|c| !told(*c)) {
                    let window_closed = error.is_some_and(|e| e.code == 131047);
                    self.apply(
                        Event::Undeliverable {
                            card,
                            message: key,
                            reason: reason.unwrap_or_else(|| "WhatsApp reports it failed".into()),
                            window_closed,
                        },
                        None,
                    );
                }
            }
        }
        Ok(())
    }

    /// Takes what the engine did into the batch: cards it touched, messages
    /// to send.
    fn absorb(&mut self, out: Outcome, now: DateTime<Utc>) {
        for e in out.effects {
            let Some(card) = e.card else { continue };
            self.touched.insert(card);
            match e.kind {
                EffectKind::Send {
                    message,
                    to,
                    text,
                    template,
                    language,
                    params,
                } => {
                    let pipe = self.state.cards[card].pipe.clone();
                    let phone_number_id = self.number_id(&pipe).unwrap_or_default();
                    let message_out = match template {
                        Some(name) => Outgoing::Template {
                            name,
                            language: language.unwrap_or_else(|| "en".into()),
                            params,
                        },
                        None => Outgoing::Text {
                            body: text.unwrap_or_default(),
                        },
                    };
                    // A contact who changed number is written at the new one.
                    let to = self.addresses.get(&to).cloned().unwrap_or(to);
                    let request = SendRequest {
                        phone_number_id: phone_number_id.clone(),
                        to: to.clone(),
                        message: message_out,
                        reply_to: None,
                        callback_data: None,
                    };
                    self.batch.outbox.push(OutboxNew {
                        card_id: card as i64,
                        message_key: message,
                        phone_number_id,
                        recipient: to,
                        request: serde_json::to_string(&request).unwrap_or_default(),
                        at: now.timestamp_millis(),
                    });
                }
                EffectKind::Sla { state, .. } if state == "breached" => {
                    Metrics::bump(&self.metrics.sla_breaches);
                }
                EffectKind::FieldSet { field, to, .. } => {
                    let value = match to {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.batch.search.push(SearchRow {
                        card_id: card as i64,
                        pipe: self.state.cards[card].pipe.clone(),
                        body: format!("{field} {value}"),
                    });
                }
                _ => {}
            }
        }
    }

    /// Remembers that an identifier names the contact the engine calls `key`.
    fn remember(&mut self, alias: String, key: &str) {
        if is_bsuid(&alias) {
            self.bsuids.insert(key.to_string(), alias.clone());
        }
        self.identities.insert(alias, key.to_string());
    }

    /// The `phone_number_id` a pipe sends through: the one its workflow
    /// names, else the one learnt from its webhooks.
    fn number_id(&self, pipe: &str) -> Option<String> {
        let named = self.engine.as_ref().and_then(|e| {
            e.workflow()
                .pipe(pipe)
                .and_then(|p| p.numbers.iter().find_map(|n| n.phone_number_id.clone()))
        });
        named.or_else(|| self.numbers.get(pipe).cloned())
    }

    /// Turns the touched cards into rows.
    fn project(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        if self.persisted.len() < self.state.cards.len() {
            self.persisted.resize(self.state.cards.len(), (0, 0));
        }
        let mut contacts = BTreeSet::new();
        for id in touched {
            let Some(c) = self.state.cards.get(id) else {
                continue;
            };
            let (pm, ph) = self.persisted[id];
            if pm == 0 && ph == 0 {
                let contact = self.state.contacts.get(&c.contact);
                self.batch.search.push(SearchRow {
                    card_id: id as i64,
                    pipe: c.pipe.clone(),
                    body: format!(
                        "{} {} {}",
                        contact.map(|x| x.name.as_str()).unwrap_or(""),
                        contact.map(|x| x.phone.as_str()).unwrap_or(""),
                        c.contact
                    ),
                });
            }
            for m in &c.messages[pm.min(c.messages.len())..] {
                let raw = self.raws.get(&m.id);
                let inbound = m.direction == Direction::In;
                self.batch.messages.push(MessageRow {
                    card_id: id as i64,
                    key: m.id.clone(),
                    wamid: inbound.then(|| m.id.clone()),
                    direction: if inbound { "in" } else { "out" }.into(),
                    kind: m.kind.clone(),
                    text: m.text.clone(),
                    author: m.author.clone(),
                    status: m.status.clone(),
                    at: m.at.timestamp_millis(),
                    wa_timestamp: raw.map(|r| r.1),
                    raw: raw.map(|r| r.0.clone()),
                });
                if let Some(t) = &m.text {
                    self.batch.search.push(SearchRow {
                        card_id: id as i64,
                        pipe: c.pipe.clone(),
                        body: t.clone(),
                    });
                }
            }
            for h in &c.history[ph.min(c.history.len())..] {
                self.batch.history.push(HistoryRow {
                    card_id: id as i64,
                    at: h.at.timestamp_millis(),
                    what: h.what.clone(),
                    cause: serde_json::to_string(&h.cause).unwrap_or_default(),
                });
            }
            self.persisted[id] = (c.messages.len(), c.history.len());
            let preview = c
                .messages
                .last()
                .and_then(|m| m.text.clone())
                .unwrap_or_default()
                .chars()
                .take(140)
                .collect();
            self.batch.cards.push(CardRow {
                id: id as i64,
                pipe: c.pipe.clone(),
                number: c.number as i64,
                contact: c.contact.clone(),
                status: c.status.clone(),
                open: c.open,
                assignee: c.assignee.clone(),
                team: c.team.clone(),
                sla_state: c
                    .sla
                    .as_ref()
                    .map(|s| s.state.clone())
                    .unwrap_or_else(|| "none".into()),
                sla_due_at: c
                    .sla
                    .as_ref()
                    .and_then(|s| s.due_at)
                    .map(|d| d.timestamp_millis()),
                last_responder: c.last_responder.map(|r| match r {
                    Responder::Team => "team".into(),
                    Responder::Customer => "customer".into(),
                }),
                template_needed: c.template_needed,
                preview,
                view: view::card_json(&self.state, id, false).to_string(),
                created_at: c.created_at.timestamp_millis(),
                updated_at: c.updated_at.timestamp_millis(),
                first_reply_at: c.first_reply_at.map(|t| t.timestamp_millis()),
                closed_at: c.closed_at.map(|t| t.timestamp_millis()),
            });
            contacts.insert(c.contact.clone());
        }
        let now = crate::now_ms();
        for wa_id in contacts {
            if let Some(x) = self.state.contacts.get(&wa_id) {
                // The business-scoped id, when one of their identifiers is one.
                let user_id = self.bsuids.get(&wa_id).cloned();
                // A contact who changed number shows the new one.
                let phone = self
                    .addresses
                    .get(&wa_id)
                    .filter(|a| !is_bsuid(a))
                    .map(|a| format!("+{a}"))
                    .unwrap_or_else(|| x.phone.clone());
                // Written only when it changed since this engine last wrote
                // it (after a restart: once more, harmlessly).
                let seen = (x.name.clone(), phone.clone(), user_id.clone());
                if self.contacts_written.get(&wa_id) == Some(&seen) {
                    continue;
                }
                self.contacts_written.insert(wa_id.clone(), seen);
                self.batch.contacts.push(ContactRow {
                    wa_id: wa_id.clone(),
                    user_id,
                    username: None,
                    name: x.name.clone(),
                    phone,
                    updated_at: now,
                });
            }
        }
    }

    /// Stores the batch in one transaction, waiting for the disk or not.
    async fn commit(&mut self, durability: Durability) -> Result<(), String> {
        if self.batch.events.is_empty()
            && self.batch.inbox_done.is_empty()
            && self.batch.alerts.is_empty()
        {
            return Ok(());
        }
        self.project();
        let mut batch = std::mem::take(&mut self.batch);
        batch.redoable = matches!(durability, Durability::Redoable);
        let consumed = batch.inbox_done.len() as i64;
        let sends = !batch.outbox.is_empty();
        self.store.commit(batch).await.map_err(|e| e.to_string())?;
        self.raws.clear();
        Metrics::bump(&self.metrics.batches);
        let backlog = &self.metrics.inbox_backlog;
        let _ = backlog.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
            Some((b - consumed).max(0))
        });
        if sends {
            self.sender_wake.notify_one();
        }
        crate::bump(&self.progress);
        Ok(())
    }
}

/// Whether a batch's commit waits for the disk.
#[derive(Debug, Clone, Copy)]
enum Durability {
    /// All of it comes from stored webhook bodies and timers, so it is done
    /// again if a power cut loses it (see [`Batch::redoable`]): it need not
    /// wait.
    Redoable,
    /// It holds what nothing would bring back (an agent's action, a reload,
    /// an undeliverable notice, the last batch before a stop): it waits.
    OnDisk,
}

/// Whether an identifier is a business-scoped user id (`BR.1234…`), not a
/// phone's wa_id (digits only).
fn is_bsuid(id: &str) -> bool {
    id.split_once('.').is_some_and(|(country, rest)| {
        country.len() == 2 && country.chars().all(|c| c.is_ascii_uppercase()) && !rest.is_empty()
    })
}

/// The pipe a number (digits) feeds.
fn pipe_of(engine: &Engine, digits: &str) -> Option<String> {
    let digits: String = digits.chars().filter(char::is_ascii_digit).collect();
    engine
        .workflow()
        .pipe_for_number(&digits)
        .map(|p| p.name.clone())
}

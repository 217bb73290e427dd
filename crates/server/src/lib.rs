//! The server: the axum app (the WhatsApp webhook, health, metrics) and the
//! loops that run behind it — the inbox writer, the engine, the outbound
//! sender — wired together by [`start`].
//!
//! A webhook travels: `ingest::receive` (signature, then one grouped insert
//! of the raw body, then 200) → `processor` (parse, engine, one transaction
//! per batch with cards, history and queued replies) → `sender` (Graph API,
//! pacing, retries) → back as statuses through the webhook.

pub mod accounts;
pub mod api;
pub mod config;
pub mod files;
mod ingest;
pub mod metrics;
mod processor;
mod sender;
pub mod web;
pub mod workflows;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use config::Config;
use metrics::Metrics;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use switchboard_store::Store;
use switchboard_whatsapp::fake::FakeGraph;
use switchboard_whatsapp::graph::GraphClient;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;

pub use processor::Command;

/// Tells waiters the server did something (see [`Running::until`]).
pub(crate) fn bump(progress: &watch::Sender<u64>) {
    progress.send_modify(|n| *n += 1);
}

/// The most cards a search finds (the board and the API show them by card).
pub const SEARCH_LIMIT: i64 = 2_000;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct App {
    pub(crate) config: Arc<Config>,
    pub(crate) store: Store,
    pub(crate) inbox: mpsc::Sender<ingest::InboxJob>,
    pub(crate) metrics: Arc<Metrics>,
    /// The running workflow (None until the engine started).
    pub(crate) workflow: watch::Receiver<Option<Arc<switchboard_lang::model::Workflow>>>,
    /// The engine's inbox for agents' actions.
    pub(crate) engine: mpsc::Sender<Command>,
    /// The server did something (pages refresh live).
    pub(crate) progress: Arc<watch::Sender<u64>>,
    /// The web pages.
    pub(crate) pages: Arc<web::Pages>,
    /// Failed log-ins.
    pub(crate) logins: Arc<web::session::LoginLimiter>,
    /// This server's own address (the phone simulator posts to it).
    pub(crate) self_url: String,
    /// The demo's fake Graph API.
    pub(crate) fake: Option<Arc<FakeGraph>>,
    /// What the phone simulator sent.
    pub(crate) demo_log: Arc<web::demo::DemoLog>,
    /// Becomes true when the server stops (long-lived streams end then).
    pub(crate) stopping: watch::Receiver<bool>,
    /// The Graph API (media downloads for the card page).
    pub(crate) graph: GraphClient,
}

/// Milliseconds since the epoch as RFC 3339 (UTC, seconds).
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An API error: `{ "error": { "code", "message" } }` with its status.
pub(crate) fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// The HTTP routes.
fn router(app: App) -> Router {
    let limit = app.config.webhook_max_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/pipes", get(api::pipes))
        .route("/api/pipes/{pipe}/cards", get(api::cards))
        .route("/api/cards/{id}", get(api::card))
        .route("/api/cards/{id}/reply", axum::routing::post(api::reply))
        .route("/api/cards/{id}/move", axum::routing::post(api::move_card))
        .route("/api/cards/{id}/assign", axum::routing::post(api::assign))
        .route("/api/cards/{id}/fields", axum::routing::patch(api::fields))
        .route(
            "/webhooks/whatsapp",
            get(ingest::handshake)
                .post(ingest::receive)
                .layer(DefaultBodyLimit::max(limit)),
        )
        .merge(web::routes())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

async fn healthz(State(app): State<App>) -> Response {
    if app.store.healthy().await {
        (StatusCode::OK, "ok").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer",
        )
            .into_response()
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// A running server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The fake Graph API of the demo.
    pub fake: Option<Arc<FakeGraph>>,
    /// The demo's users, to print at start.
    pub demo_users: &'static [web::demo::DemoUser],
    store: Store,
    metrics: Arc<Metrics>,
    shutdown: watch::Sender<bool>,
    engine: mpsc::Sender<Command>,
    progress: Arc<watch::Sender<u64>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Reads the workflow folder again: checked first, refused with the
    /// diagnostics when it has errors.
    pub async fn reload(&self) -> Result<String, String> {
        reload(&self.engine).await
    }

    /// Waits until `check` holds, re-checking each time the server makes
    /// progress (a batch stored, a send finished), at most `timeout`.
    /// Returns whether it held. For tests and the load generator: no sleeps.
    pub async fn until<F, Fut>(&self, timeout: std::time::Duration, mut check: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut progress = self.progress.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check().await {
                return true;
            }
            match tokio::time::timeout_at(deadline, progress.changed()).await {
                Ok(Ok(())) => {}
                _ => return check().await,
            }
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Stops accepting requests, finishes those in flight, stores the
    /// engine's last batch and lets the sends in flight finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
        if let Some(f) = &self.fake {
            f.shutdown();
        }
    }
}

/// Asks the engine task to read the workflow folder again (SIGHUP, the
/// workflows page, tests): checked first, refused with the diagnostics.
pub(crate) async fn reload(engine: &mpsc::Sender<Command>) -> Result<String, String> {
    let (tx, rx) = oneshot::channel();
    engine
        .send(Command::Reload(tx))
        .await
        .map_err(|_| "the engine has stopped".to_string())?;
    rx.await.map_err(|_| "the engine has stopped".to_string())?
}

/// How often SQLite's write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts everything: checks the workflows, opens and migrates the
/// database, listens, and spawns the loops. Every start-up problem is one
/// sentence (or the workflow's diagnostics).
pub async fn start(mut config: Config) -> Result<Running, String> {
    // A workflow that does not check stops the start, before anything else.
    workflows::WorkflowFiles::read(&config.workflows)?;
    let store = Store::open(&config.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let fake = if config.demo {
        let fake = FakeGraph::start()
            .await
            .map_err(|e| format!("cannot start the demo's fake WhatsApp API: {e}"))?;
        config.api_base = fake.base_url();
        web::demo::seed(&store).await?;
        Some(Arc::new(fake))
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::default());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (inbox_tx, inbox_rx) = mpsc::channel(4096);
    let (engine_tx, engine_rx) = mpsc::channel(256);
    let engine_wake = Arc::new(Notify::new());
    let sender_wake = Arc::new(Notify::new());
    let active = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(watch::Sender::new(0_u64));
    let shared = Arc::new(watch::Sender::new(None));
    let workflow = shared.subscribe();
    let mut tasks = Vec::new();

    tasks.push(tokio::spawn(ingest::inbox_writer(
        store.clone(),
        inbox_rx,
        engine_wake.clone(),
        metrics.clone(),
        progress.clone(),
    )));
    let processor = processor::Processor::new(
        store.clone(),
        config.clone(),
        metrics.clone(),
        active.clone(),
        sender_wake.clone(),
        progress.clone(),
        shared,
    );
    let (ready, engine_ready) = oneshot::channel();
    tasks.push(tokio::spawn(processor.run(
        engine_rx,
        engine_wake,
        shutdown_rx.clone(),
        ready,
    )));
    // The engine has taken the lease and rebuilt its state (or another
    // server runs it) before the server says it is up.
    let _ = engine_ready.await;
    let sender = sender::Sender {
        store: store.clone(),
        config: config.clone(),
        client: GraphClient::new(&config.api_base, &config.access_token),
        active,
        wake: sender_wake,
        engine: engine_tx.clone(),
        metrics: metrics.clone(),
        progress: progress.clone(),
    };
    tasks.push(tokio::spawn(sender.run(shutdown_rx.clone())));
    let app = App {
        config: config.clone(),
        store: store.clone(),
        inbox: inbox_tx,
        metrics: metrics.clone(),
        workflow,
        engine: engine_tx.clone(),
        progress: progress.clone(),
        pages: Arc::new(web::Pages::new()),
        logins: Arc::new(web::session::LoginLimiter::default()),
        self_url: format!("http://{addr}"),
        fake: fake.clone(),
        demo_log: Arc::new(web::demo::DemoLog::default()),
        stopping: shutdown_rx.clone(),
        graph: GraphClient::new(&config.api_base, &config.access_token),
    };
    if let Some(fake) = &fake {
        tasks.push(tokio::spawn(web::demo::statuses(
            fake.clone(),
            format!("http://{addr}"),
            config::DEMO_SECRET.to_string(),
            shutdown_rx.clone(),
        )));
    }
    // SQLite: the WAL is copied into the database file in the background,
    // never inside a commit that webhooks wait for.
    if store.backend() == switchboard_store::Backend::Sqlite {
        store
            .take_over_checkpoints()
            .await
            .map_err(|e| e.to_string())?;
        let store = store.clone();
        let mut stop = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                if let Err(e) = store.checkpoint().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed; the next one will try again");
                }
            }
        }));
    }
    let mut stop = shutdown_rx;
    tasks.push(tokio::spawn(async move {
        let served = axum::serve(listener, router(app))
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    }));
    tracing::info!(%addr, database = %switchboard_store::redact(&config.database_url), "switchboard listening");
    let demo_users: &'static [web::demo::DemoUser] =
        if config.demo { web::demo::USERS } else { &[] };
    Ok(Running {
        addr,
        fake,
        demo_users,
        store,
        metrics,
        shutdown,
        engine: engine_tx,
        progress,
        tasks,
    })
}

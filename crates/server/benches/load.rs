//! Load benchmark: signed WhatsApp webhooks over loopback HTTP, on SQLite and
//! then on PostgreSQL, against two systems measured in the same run (absolute
//! figures drift; Switchboard is reported as a share of the baseline):
//!
//! - **baseline**: an axum server built here that only reads the body, checks
//!   its HMAC-SHA256 signature, hands it to one writer task that stores
//!   whatever is waiting in one transaction (`Store::append_inbox`, one
//!   multi-row insert) and answers 200 after the commit. Nothing else runs:
//!   this is the ceiling.
//! - **switchboard**: the whole server (`switchboard_server::start`) with a
//!   fake Graph API and a small workflow (auto-reply on `card.created`, a
//!   `message.text ~ "refund|reembolso"` rule that sets a field).
//!
//! Every request is a text message with a new wamid, from many contacts (a
//! pool of `BENCH_CONTACTS` numbers, and every `BENCH_NEW_CONTACT_EVERY`th
//! request from a number never seen, so cards keep being created and replies
//! keep being queued). The load generator runs in this process, on its own
//! tokio runtime: `BENCH_CONNECTIONS` HTTP/1 keep-alive connections.
//!
//! Phase 1 (closed loop, as fast as the server answers): acknowledged
//! requests per second; for Switchboard also the *sustained* rate (events
//! fully processed per second, from the first request until the inbox
//! backlog is 0) and the backlog when the load stops. Phase 2 (open loop, a
//! fixed schedule at half of phase 1's acknowledged rate): the latency of the
//! acknowledgement, p50 and p99 measured from the moment a request is sent,
//! and p99 measured from the moment it was scheduled (which also counts
//! waiting for a free connection and the generator's ≈1 ms timer).
//!
//! `cargo bench -p switchboard-server --bench load`. Settings (environment):
//! `BENCH_WARMUP_SECS` (3), `BENCH_SECS` (10), `BENCH_LATENCY_WARMUP_SECS`
//! (1), `BENCH_LATENCY_SECS` (5), `BENCH_CONNECTIONS` (32),
//! `BENCH_CONTACTS` (10000), `BENCH_NEW_CONTACT_EVERY` (10, 0 = never),
//! `BENCH_BACKENDS` (`sqlite,postgres`), `BENCH_SYSTEMS`
//! (`baseline,switchboard`), `BENCH_ROUNDS` (1: each pair runs that many
//! times, interleaved, and the medians are printed), `BENCH_SERVER_THREADS` (the number
//! of cores), `BENCH_LOAD_THREADS` (1), `BENCH_DRAIN_TIMEOUT_SECS` (600),
//! `SWITCHBOARD_TEST_POSTGRES` (`postgres://postgres@127.0.0.1:5432`),
//! `RUST_LOG` (`warn`). Nothing is asserted on timing: figures drift from
//! run to run; compare the ratio to the baseline of the same run.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_server::config::Config;
use switchboard_server::Running;
use switchboard_store::testing::{unique_name, TestDb};
use switchboard_store::{Backend, InboxItem, Store};
use switchboard_whatsapp::fake::FakeGraph;
use switchboard_whatsapp::signature;
use switchboard_whatsapp::webhook::{text_message_body, Metadata};

/// mimalloc: fewer cycles in allocation than glibc's malloc under the
/// server's many small, short-lived, cross-thread allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// The app secret both systems check signatures with (`Config::for_tests`'s).
const SECRET: &str = "test-secret";
/// The business number the workflow's pipe is fed by, and its id.
const NUMBER: &str = "551140001000";
const NUMBER_ID: &str = "106000000000042";
/// Most bodies the baseline's writer puts in one transaction (as the server).
const GROUP: usize = 500;

/// The workflow Switchboard runs: the integration tests' flow plus a rule
/// with a text condition that sets a field.
const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  field topic: choice(billing, other) = other shown
  status new open initial
  status doing active
  status waiting paused
  status done done
  flow new -> doing | waiting | done
  flow doing -> waiting | done
  flow waiting -> doing | done
  rule greet on card.created {
    reply "Olá {{ contact.name }}!"
  }
  rule refund on message.received when message.text ~ "refund|reembolso" {
    set topic = billing
  }
}
"#;

// ---- settings ---------------------------------------------------------------

/// What the environment may change.
#[derive(Debug, Clone)]
struct Settings {
    warmup: Duration,
    measure: Duration,
    latency_warmup: Duration,
    latency: Duration,
    connections: usize,
    contacts: u64,
    new_contact_every: u64,
    backends: Vec<Backend>,
    baseline: bool,
    switchboard: bool,
    server_threads: usize,
    load_threads: usize,
    /// How many times each pair (baseline, Switchboard) runs, interleaved.
    rounds: usize,
    drain_timeout: Duration,
}

fn env_or<T: FromStr>(key: &str, default: T) -> T {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse() {
            Ok(x) => x,
            Err(_) => panic!("{key} should be a number, not `{v}`"),
        },
        _ => default,
    }
}

fn secs(key: &str, default: f64) -> Duration {
    Duration::from_secs_f64(env_or(key, default).max(0.0))
}

impl Settings {
    fn from_env() -> Settings {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let backends = std::env::var("BENCH_BACKENDS")
            .unwrap_or_else(|_| "sqlite,postgres".into())
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "sqlite" => Backend::Sqlite,
                "postgres" | "postgresql" => Backend::Postgres,
                other => panic!("BENCH_BACKENDS: `{other}` is neither sqlite nor postgres"),
            })
            .collect();
        let systems = std::env::var("BENCH_SYSTEMS")
            .unwrap_or_else(|_| "baseline,switchboard".into())
            .to_ascii_lowercase();
        Settings {
            baseline: systems.contains("baseline"),
            switchboard: systems.contains("switchboard"),
            warmup: secs("BENCH_WARMUP_SECS", 3.0),
            measure: secs("BENCH_SECS", 10.0),
            latency_warmup: secs("BENCH_LATENCY_WARMUP_SECS", 1.0),
            latency: secs("BENCH_LATENCY_SECS", 5.0),
            connections: env_or("BENCH_CONNECTIONS", 32_usize).max(1),
            contacts: env_or("BENCH_CONTACTS", 10_000_u64).max(1),
            new_contact_every: env_or("BENCH_NEW_CONTACT_EVERY", 10_u64),
            backends,
            server_threads: env_or("BENCH_SERVER_THREADS", cores).max(1),
            load_threads: env_or("BENCH_LOAD_THREADS", 1_usize).max(1),
            rounds: env_or("BENCH_ROUNDS", 1_usize).max(1),
            drain_timeout: secs("BENCH_DRAIN_TIMEOUT_SECS", 600.0),
        }
    }
}

// ---- the requests -------------------------------------------------------------

/// Where requests go and how they are made.
struct Target {
    addr: SocketAddr,
    host: String,
    meta: Metadata,
    contacts: u64,
    new_contact_every: u64,
    /// Makes every wamid unique in this run.
    next: Arc<AtomicU64>,
    run: String,
}

impl Target {
    fn new(addr: SocketAddr, settings: &Settings, next: Arc<AtomicU64>) -> Target {
        Target {
            addr,
            host: addr.to_string(),
            meta: Metadata {
                phone_number_id: NUMBER_ID.into(),
                display_phone_number: NUMBER.into(),
            },
            contacts: settings.contacts,
            new_contact_every: settings.new_contact_every,
            next,
            run: format!("{:x}", std::process::id()),
        }
    }

    /// A signed text message webhook with a new wamid.
    fn request(&self) -> hyper::Request<Full<Bytes>> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let fresh = self.new_contact_every > 0 && n.is_multiple_of(self.new_contact_every);
        let (from, name) = if fresh {
            (format!("5521{:09}", n % 1_000_000_000), format!("Novo {n}"))
        } else {
            let c = n % self.contacts;
            (format!("55119{c:08}"), format!("Cliente {c}"))
        };
        let wamid = format!("wamid.bench.{}.{n:012}", self.run);
        let text = if n.is_multiple_of(4) {
            "Quero o reembolso do pedido 12345, por favor"
        } else {
            "Olá, preciso de ajuda com a minha entrega"
        };
        let ts = (switchboard_server::now_ms() / 1000).max(1);
        let body = text_message_body(&self.meta, &from, &name, &wamid, ts, text);
        let sig = signature::sign(SECRET, body.as_bytes());
        hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri("/webhooks/whatsapp")
            .header(hyper::header::HOST, self.host.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("x-hub-signature-256", sig)
            .body(Full::new(Bytes::from(body)))
            .expect("a well-formed request")
    }
}

/// One keep-alive HTTP/1 connection.
async fn connect(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer; the status.
async fn exchange(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    req: hyper::Request<Full<Bytes>>,
) -> Result<u16, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// What the connections of a phase counted.
#[derive(Debug, Default, Clone)]
struct Tally {
    ok: u64,
    refused: u64,
    errors: u64,
    last_error: Option<String>,
    /// Microseconds from sending to the whole answer (open loop only).
    sent_us: Vec<u32>,
    /// Microseconds from the scheduled time to the whole answer.
    scheduled_us: Vec<u32>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.refused += other.refused;
        self.errors += other.errors;
        if other.last_error.is_some() {
            self.last_error = other.last_error;
        }
        self.sent_us.extend(other.sent_us);
        self.scheduled_us.extend(other.scheduled_us);
    }

    fn note(&mut self, outcome: Result<u16, String>) -> bool {
        match outcome {
            Ok(200) => {
                self.ok += 1;
                true
            }
            Ok(s) => {
                self.refused += 1;
                self.last_error = Some(format!("HTTP {s}"));
                true
            }
            Err(e) => {
                self.errors += 1;
                self.last_error = Some(e);
                false
            }
        }
    }
}

/// Closed loop: every connection sends its next request as soon as the
/// previous one is answered, until `duration` has passed. Returns the tally
/// and the time from the first request to the last answer.
async fn closed_loop(
    target: Arc<Target>,
    connections: usize,
    duration: Duration,
) -> (Tally, Duration) {
    let started = Instant::now();
    let until = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut conn = None;
            while Instant::now() < until {
                let sender = match &mut conn {
                    Some(s) => s,
                    None => match connect(target.addr).await {
                        Ok(s) => conn.insert(s),
                        Err(e) => {
                            tally.note(Err(e));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let req = target.request();
                if !tally.note(exchange(sender, req).await) {
                    conn = None;
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for t in tasks {
        tally.add(t.await.expect("a load connection task"));
    }
    (tally, started.elapsed())
}

/// Open loop: requests due on a fixed schedule (`rate` per second); each
/// connection takes the next due slot, waits for its time and sends it.
/// Latencies are recorded for slots due after `warmup`.
async fn open_loop(
    target: Arc<Target>,
    connections: usize,
    rate: f64,
    warmup: Duration,
    duration: Duration,
) -> (Tally, Duration) {
    let started = Instant::now() + Duration::from_millis(20);
    let record_from = started + warmup;
    let until = record_from + duration;
    let slot = Arc::new(AtomicU64::new(0));
    let interval = 1.0 / rate.max(1.0);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = target.clone();
        let slot = slot.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut conn = match connect(target.addr).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tally.note(Err(e));
                    None
                }
            };
            loop {
                let i = slot.fetch_add(1, Ordering::Relaxed);
                let due = started + Duration::from_secs_f64(i as f64 * interval);
                if due >= until {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let sender = match &mut conn {
                    Some(s) => s,
                    None => match connect(target.addr).await {
                        Ok(s) => conn.insert(s),
                        Err(e) => {
                            tally.note(Err(e));
                            continue;
                        }
                    },
                };
                let req = target.request();
                let sent = Instant::now();
                let outcome = exchange(sender, req).await;
                let done = Instant::now();
                let ok = matches!(outcome, Ok(200));
                if !tally.note(outcome) {
                    conn = None;
                }
                if ok && due >= record_from {
                    let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
                    tally.sent_us.push(us(done - sent));
                    tally.scheduled_us.push(us(done - due));
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for t in tasks {
        tally.add(t.await.expect("a load connection task"));
    }
    (tally, until.saturating_duration_since(record_from))
}

/// The value under which `p` percent of the samples fall, in milliseconds.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

// ---- the baseline -----------------------------------------------------------

/// A body waiting for the baseline's writer.
struct Job {
    body: Vec<u8>,
    received_at: i64,
    stored: oneshot::Sender<bool>,
}

#[derive(Clone)]
struct Bare {
    secrets: Arc<Vec<String>>,
    jobs: mpsc::Sender<Job>,
}

/// The baseline's only route: signature, grouped insert, 200 after commit.
async fn bare_receive(State(bare): State<Bare>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if signature::verify(&bare.secrets, &body, header).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    let (stored, answer) = oneshot::channel();
    let job = Job {
        body: body.to_vec(),
        received_at: switchboard_server::now_ms(),
        stored,
    };
    if bare.jobs.send(job).await.is_ok() && answer.await.unwrap_or(false) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The one writer: whatever is waiting (≤ [`GROUP`]) in one transaction.
async fn bare_writer(store: Store, mut jobs: mpsc::Receiver<Job>, batches: Arc<AtomicU64>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let mut items = Vec::with_capacity(group.len());
        let mut waiting = Vec::with_capacity(group.len());
        for j in group {
            items.push(InboxItem {
                body: j.body,
                received_at: j.received_at,
            });
            waiting.push(j.stored);
        }
        let ok = match store.append_inbox(&items).await {
            Ok(_) => true,
            Err(e) => {
                eprintln!("baseline: insert failed: {e}");
                false
            }
        };
        batches.fetch_add(1, Ordering::Relaxed);
        for w in waiting {
            let _ = w.send(ok);
        }
    }
}

/// The running baseline server.
struct Baseline {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
    batches: Arc<AtomicU64>,
}

impl Baseline {
    async fn start(store: Store) -> Baseline {
        let (jobs, rx) = mpsc::channel(4096);
        let batches = Arc::new(AtomicU64::new(0));
        let writer = tokio::spawn(bare_writer(store, rx, batches.clone()));
        let app = Router::new()
            .route("/webhooks/whatsapp", post(bare_receive))
            .with_state(Bare {
                secrets: Arc::new(vec![SECRET.to_string()]),
                jobs,
            });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a port for the baseline");
        let addr = listener.local_addr().expect("the baseline's address");
        let (shutdown, mut stop) = watch::channel(false);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        });
        Baseline {
            addr,
            shutdown,
            server,
            writer,
            batches,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        // The router (and with it the jobs sender) is gone: the writer ends.
        let _ = self.writer.await;
    }
}

// ---- results ------------------------------------------------------------------

/// The figures of one system on one database.
#[derive(Debug, Default, Clone)]
struct Figures {
    ack_rate: f64,
    acked: u64,
    /// Events fully processed per second (Switchboard only).
    sustained: Option<f64>,
    /// Inbox backlog when the load stopped (Switchboard only).
    backlog_end: Option<i64>,
    /// Seconds from the end of the load to an empty inbox.
    drain_secs: Option<f64>,
    /// Bodies per write transaction on the ack path; rows per engine batch.
    per_ack_commit: Option<f64>,
    per_engine_batch: Option<f64>,
    target_rate: f64,
    achieved_rate: f64,
    p50: f64,
    p99: f64,
    p99_scheduled: f64,
    latency_backlog_end: Option<i64>,
    failures: u64,
    last_error: Option<String>,
}

fn log(msg: &str) {
    eprintln!("[load] {msg}");
}

fn name_of(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Phase 2 for either system: latency at half of `ack_rate`.
async fn latency_phase(
    load: &tokio::runtime::Handle,
    target: Arc<Target>,
    settings: &Settings,
    ack_rate: f64,
    figures: &mut Figures,
) {
    let rate = (ack_rate / 2.0).max(1.0);
    let (tally, window) = load
        .spawn(open_loop(
            target,
            settings.connections,
            rate,
            settings.latency_warmup,
            settings.latency,
        ))
        .await
        .expect("the open-loop generator");
    let mut sent = tally.sent_us.clone();
    let mut scheduled = tally.scheduled_us.clone();
    sent.sort_unstable();
    scheduled.sort_unstable();
    figures.target_rate = rate;
    figures.achieved_rate = sent.len() as f64 / window.as_secs_f64().max(1e-9);
    figures.p50 = percentile_ms(&sent, 50.0);
    figures.p99 = percentile_ms(&sent, 99.0);
    figures.p99_scheduled = percentile_ms(&scheduled, 99.0);
    figures.failures += tally.refused + tally.errors;
    if tally.last_error.is_some() {
        figures.last_error = tally.last_error;
    }
}

async fn bench_baseline(
    backend: Backend,
    settings: &Settings,
    load: &tokio::runtime::Handle,
    next: Arc<AtomicU64>,
) -> Figures {
    let db = TestDb::new(backend)
        .await
        .expect("a fresh database (is PostgreSQL running on 127.0.0.1:5432?)");
    let base = Baseline::start(db.store.clone()).await;
    let target = Arc::new(Target::new(base.addr, settings, next));
    let mut f = Figures::default();
    let who = format!("{} baseline", name_of(backend));

    warm_up(&who, load, target.clone(), settings).await;
    log(&format!("{who}: measuring {:?}", settings.measure));
    let batches_before = base.batches.load(Ordering::Relaxed);
    let (tally, took) = load
        .spawn(closed_loop(
            target.clone(),
            settings.connections,
            settings.measure,
        ))
        .await
        .expect("the closed-loop generator");
    let batches = base.batches.load(Ordering::Relaxed) - batches_before;
    f.acked = tally.ok;
    f.ack_rate = tally.ok as f64 / took.as_secs_f64();
    f.per_ack_commit = (batches > 0).then(|| tally.ok as f64 / batches as f64);
    f.failures = tally.refused + tally.errors;
    f.last_error = tally.last_error;
    log(&format!(
        "{who}: {:.0} acks/s ({} in {:.2} s, {:.1} bodies per commit, {} failures)",
        f.ack_rate,
        tally.ok,
        took.as_secs_f64(),
        f.per_ack_commit.unwrap_or(0.0),
        f.failures
    ));

    log(&format!(
        "{who}: latency at {:.0}/s for {:?}",
        f.ack_rate / 2.0,
        settings.latency
    ));
    let ack_rate = f.ack_rate;
    latency_phase(load, target, settings, ack_rate, &mut f).await;
    log(&format!(
        "{who}: p50 {:.2} ms, p99 {:.2} ms (from schedule {:.2} ms), {:.0}/s achieved",
        f.p50, f.p99, f.p99_scheduled, f.achieved_rate
    ));
    base.stop().await;
    db.finish().await.expect("drop the database");
    f
}

/// Phase 0: a closed-loop warm-up (its figures are only logged).
async fn warm_up(
    who: &str,
    load: &tokio::runtime::Handle,
    target: Arc<Target>,
    settings: &Settings,
) {
    log(&format!("{who}: warm-up {:?}", settings.warmup));
    let (tally, took) = load
        .spawn(closed_loop(target, settings.connections, settings.warmup))
        .await
        .expect("the warm-up");
    log(&format!(
        "{who}: warm-up: {:.0} acks/s, {} failures",
        tally.ok as f64 / took.as_secs_f64().max(1e-9),
        tally.refused + tally.errors
    ));
}

/// Waits (no sleeps: `Running::until`) for an empty inbox; the time it took.
async fn drain(running: &Running, timeout: Duration) -> Result<Duration, Duration> {
    let started = Instant::now();
    let store = running.store().clone();
    let done = running
        .until(timeout, || {
            let store = store.clone();
            async move { store.inbox_backlog().await.map(|n| n == 0).unwrap_or(false) }
        })
        .await;
    if done {
        Ok(started.elapsed())
    } else {
        Err(started.elapsed())
    }
}

async fn backlog(running: &Running) -> i64 {
    running
        .store()
        .inbox_backlog()
        .await
        .expect("the inbox backlog")
}

async fn bench_switchboard(
    backend: Backend,
    settings: &Settings,
    load: &tokio::runtime::Handle,
    next: Arc<AtomicU64>,
) -> Figures {
    let db = TestDb::new(backend)
        .await
        .expect("a fresh database (is PostgreSQL running on 127.0.0.1:5432?)");
    let dir: PathBuf = std::env::temp_dir().join(unique_name("switchboard-bench-flows"));
    std::fs::create_dir_all(&dir).expect("a workflow folder");
    std::fs::write(dir.join("support.flow"), FLOW).expect("the workflow file");
    let fake = FakeGraph::start().await.expect("the fake Graph API");
    let config = Config::for_tests(&db.url, &dir, &fake.base_url());
    let running = switchboard_server::start(config)
        .await
        .expect("Switchboard starts");
    let target = Arc::new(Target::new(running.addr, settings, next));
    let mut f = Figures::default();
    let who = format!("{} switchboard", name_of(backend));

    warm_up(&who, load, target.clone(), settings).await;
    match drain(&running, settings.drain_timeout).await {
        Ok(d) => log(&format!(
            "{who}: warm-up backlog drained in {:.2} s",
            d.as_secs_f64()
        )),
        Err(_) => log(&format!("{who}: the warm-up backlog did not drain in time")),
    }

    log(&format!("{who}: measuring {:?}", settings.measure));
    let metrics = running.metrics();
    let processed_before = metrics.messages_processed.load(Ordering::Relaxed);
    let batches_before = metrics.batches.load(Ordering::Relaxed);
    let started = Instant::now();
    let (tally, took) = load
        .spawn(closed_loop(
            target.clone(),
            settings.connections,
            settings.measure,
        ))
        .await
        .expect("the closed-loop generator");
    let backlog_end = backlog(&running).await;
    let drained = drain(&running, settings.drain_timeout).await;
    let until_empty = started.elapsed();
    let processed = metrics.messages_processed.load(Ordering::Relaxed) - processed_before;
    let batches = metrics.batches.load(Ordering::Relaxed) - batches_before;
    f.acked = tally.ok;
    f.ack_rate = tally.ok as f64 / took.as_secs_f64();
    f.backlog_end = Some(backlog_end);
    f.failures = tally.refused + tally.errors;
    f.last_error = tally.last_error;
    f.per_engine_batch = (batches > 0).then(|| processed as f64 / batches as f64);
    match drained {
        Ok(d) => {
            f.drain_secs = Some(d.as_secs_f64());
            f.sustained = Some(tally.ok as f64 / until_empty.as_secs_f64());
        }
        Err(d) => {
            f.drain_secs = Some(d.as_secs_f64());
            log(&format!(
                "{who}: the inbox did not drain within {:?}",
                settings.drain_timeout
            ));
        }
    }
    log(&format!(
        "{who}: {:.0} acks/s ({} in {:.2} s, {} failures); backlog {} at the end of the load, empty {:.2} s later; sustained {:.0} events/s; {} messages processed, {:.1} per engine batch",
        f.ack_rate,
        tally.ok,
        took.as_secs_f64(),
        f.failures,
        backlog_end,
        f.drain_secs.unwrap_or(f64::NAN),
        f.sustained.unwrap_or(f64::NAN),
        processed,
        f.per_engine_batch.unwrap_or(0.0),
    ));
    if processed != tally.ok {
        log(&format!(
            "{who}: note: {} acknowledged but {} messages processed in the window",
            tally.ok, processed
        ));
    }

    log(&format!(
        "{who}: latency at {:.0}/s for {:?}",
        f.ack_rate / 2.0,
        settings.latency
    ));
    let ack_rate = f.ack_rate;
    latency_phase(load, target, settings, ack_rate, &mut f).await;
    let latency_backlog = backlog(&running).await;
    f.latency_backlog_end = Some(latency_backlog);
    log(&format!(
        "{who}: p50 {:.2} ms, p99 {:.2} ms (from schedule {:.2} ms), {:.0}/s achieved, backlog {} at the end",
        f.p50, f.p99, f.p99_scheduled, f.achieved_rate, latency_backlog
    ));
    let counts = running.store().outbox_counts().await.unwrap_or_default();
    log(&format!(
        "{who}: {} messages processed in all; outbox {counts:?}; {} sent to the fake Graph API",
        metrics.messages_processed.load(Ordering::Relaxed),
        fake.sent().len()
    ));
    running.stop().await;
    fake.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    db.finish().await.expect("drop the database");
    f
}

// ---- the table ----------------------------------------------------------------

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn table(rows: &[(Backend, Option<Figures>, Option<Figures>)], settings: &Settings) {
    println!();
    println!(
        "load: {} connections, warm-up {:?}, measure {:?}; latency at half the ack rate for {:?}; {} contacts{}; {} server threads, {} load threads",
        settings.connections,
        settings.warmup,
        settings.measure,
        settings.latency,
        settings.contacts,
        if settings.new_contact_every > 0 {
            format!(", 1 in {} from a new contact", settings.new_contact_every)
        } else {
            String::new()
        },
        settings.server_threads,
        settings.load_threads,
    );
    println!();
    println!(
        "| db       | system      |   acks/s | sustained/s | backlog at end | share of baseline (acks / sustained) | latency rate/s | p50 ms | p99 ms | p99 ms from schedule | failures |"
    );
    println!(
        "| -------- | ----------- | -------: | ----------: | -------------: | -----------------------------------: | -------------: | -----: | -----: | -------------------: | -------: |"
    );
    for (backend, a, b) in rows {
        for (system, f) in [("baseline", a), ("switchboard", b)] {
            let Some(f) = f else { continue };
            let share = match (system, a) {
                ("baseline", _) => "100 %".to_string(),
                (_, Some(a)) => {
                    let acks = 100.0 * f.ack_rate / a.ack_rate.max(1e-9);
                    let sustained = f.sustained.map_or_else(
                        || "-".into(),
                        |s| format!("{:.0} %", 100.0 * s / a.ack_rate.max(1e-9)),
                    );
                    format!("{acks:.0} % / {sustained}")
                }
                _ => "-".to_string(),
            };
            println!(
                "| {:<8} | {:<11} | {:>8.0} | {:>11} | {:>14} | {:>36} | {:>14.0} | {:>6.2} | {:>6.2} | {:>20.2} | {:>8} |",
                name_of(*backend),
                system,
                f.ack_rate,
                opt(f.sustained, 0),
                f.backlog_end.map_or_else(|| "-".into(), |n| n.to_string()),
                share,
                f.target_rate,
                f.p50,
                f.p99,
                f.p99_scheduled,
                f.failures,
            );
        }
    }
    println!();
    println!("targets: Switchboard's sustained rate ≥ 50 % of the baseline; ack p99 < 10 ms at half the max ack rate. Nothing is asserted.");
    for (backend, a, b) in rows {
        for (system, f) in [("baseline", a), ("switchboard", b)] {
            if let Some(e) = f.as_ref().and_then(|f| f.last_error.as_ref()) {
                println!("{} {system}: last failure: {e}", name_of(*backend));
            }
        }
    }
}

/// The median over the rounds of each backend: one run says little on a
/// shared machine.
fn medians(rows: &[(Backend, Option<Figures>, Option<Figures>)], settings: &Settings) {
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    println!();
    println!("medians of {} rounds:", settings.rounds);
    for backend in &settings.backends {
        let pairs: Vec<(&Figures, &Figures)> = rows
            .iter()
            .filter(|(b, _, _)| b == backend)
            .filter_map(|(_, a, b)| Some((a.as_ref()?, b.as_ref()?)))
            .collect();
        let share = median(
            pairs
                .iter()
                .filter_map(|(a, b)| Some(100.0 * b.sustained? / a.ack_rate.max(1e-9)))
                .collect(),
        );
        let p99 = |pick: fn(&(&Figures, &Figures)) -> f64| median(pairs.iter().map(pick).collect());
        println!(
            "  {}: sustained share {} %, ack p99 {} ms (baseline {} ms)",
            name_of(*backend),
            opt(share, 0),
            opt(p99(|(_, b)| b.p99), 2),
            opt(p99(|(a, _)| a.p99), 2),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness has no options of its own.
    let settings = Settings::from_env();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.server_threads)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("the server's runtime");
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.load_threads)
        .thread_name("load")
        .enable_all()
        .build()
        .expect("the load generator's runtime");
    let next = Arc::new(AtomicU64::new(0));
    let rows = server.block_on(async {
        let mut rows = Vec::new();
        for backend in settings
            .backends
            .iter()
            .flat_map(|b| std::iter::repeat_n(*b, settings.rounds))
        {
            let a = if settings.baseline {
                Some(bench_baseline(backend, &settings, load.handle(), next.clone()).await)
            } else {
                None
            };
            let b = if settings.switchboard {
                Some(bench_switchboard(backend, &settings, load.handle(), next.clone()).await)
            } else {
                None
            };
            rows.push((backend, a, b));
        }
        rows
    });
    table(&rows, &settings);
    if settings.rounds > 1 {
        medians(&rows, &settings);
    }
    load.shutdown_timeout(Duration::from_secs(1));
    server.shutdown_timeout(Duration::from_secs(1));
}

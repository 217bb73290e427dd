//! The fake Graph API server: a real HTTP server on a loopback port that
//! answers like Meta's `/messages`, media lookup and media download
//! endpoints (whatsapp.md §14), records what it received, and can be
//! scripted to fail, stall or drop the connection. Used by the tests and by
//! `switchboard serve --demo`.
//!
//! It enforces what Meta enforces and the tests rely on: a Bearer token
//! (401, code 190), `messaging_product`, `to` or `recipient` (`to` wins),
//! Meta's text and button limits (the same rules as the client's own check,
//! answered with Meta's codes 100 and 131009).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::graph::check_body;

/// The API version in the base URL the fake hands out (any version is served).
const VERSION: &str = "v25.0";

/// A fake Graph API on 127.0.0.1:<random port>.
pub struct FakeGraph {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGraph")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

/// One request the fake received.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    /// The phone number id from the path.
    pub phone_number_id: String,
    /// The JSON body (a JSON string holding the raw text if it was not JSON).
    pub body: serde_json::Value,
    /// The `Authorization` header as received.
    pub authorization: Option<String>,
    /// The wamid the fake answered (or is about to, for a delayed answer); `None` for errors and drops.
    pub wamid: Option<String>,
}

/// What the fake answers to the next send(s).
#[derive(Debug, Clone)]
pub enum Scripted {
    /// A Graph error body with this HTTP status and code; the message gets Meta's `(#code) ` prefix.
    Error {
        /// HTTP status of the answer (Meta mostly uses 400).
        http_status: u16,
        /// Graph error code.
        code: i64,
        /// Error message.
        message: String,
    },
    /// Accept, but only after this long (`Delay(Duration::ZERO)` is a plain accept).
    Delay(std::time::Duration),
    /// Close the connection without answering.
    Drop,
    /// This HTTP status with an empty body, as a proxy or an outage answers.
    Status(u16),
}

/// State shared by the handlers and the [`FakeGraph`] handle.
struct Shared {
    addr: SocketAddr,
    inner: Mutex<Inner>,
    /// The number of recorded sends, for [`FakeGraph::wait_for_sends`].
    sends: watch::Sender<usize>,
    /// Becomes true on [`FakeGraph::shutdown`].
    stopping: watch::Sender<bool>,
}

#[derive(Default)]
struct Inner {
    sent: Vec<Recorded>,
    read_marks: Vec<String>,
    script: VecDeque<Scripted>,
    next_wamid: u64,
    next_trace: u64,
    media: HashMap<String, Media>,
    links: HashMap<String, Link>,
    next_link: u64,
    expire_next_links: usize,
    media_lookups: Vec<String>,
}

struct Media {
    mime: String,
    bytes: Vec<u8>,
    ttl: Duration,
}

/// A download URL handed out for a media object.
struct Link {
    media_id: String,
    expires_at: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A handler that panicked mid-update leaves plain data behind: keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeGraph {
    /// Starts on a free loopback port (spawned on the current tokio runtime). Returns once it listens.
    pub async fn start() -> std::io::Result<FakeGraph> {
        FakeGraph::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on a given address (for `serve --demo`).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<FakeGraph> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            inner: Mutex::new(Inner::default()),
            sends: watch::channel(0).0,
            stopping: watch::channel(false).0,
        });
        let app = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(post_messages))
            .route("/{version}/{media_id}", get(get_media))
            .route("/media-download/{token}", get(download_media))
            .with_state(shared.clone());
        let mut stopping = shared.stopping.subscribe();
        let server = axum::serve(
            KillableListener(listener),
            app.into_make_service_with_connect_info::<ConnectionKill>(),
        )
        .with_graceful_shutdown(async move {
            // Also ends if the sender is gone.
            let _ = stopping.wait_for(|stop| *stop).await;
        });
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::warn!("fake Graph API stopped: {e}");
            }
        });
        tracing::info!("fake Graph API listening on http://{addr}/{VERSION}");
        Ok(FakeGraph { shared })
    }

    /// The base URL to give a GraphClient, e.g. `http://127.0.0.1:4567/v25.0`.
    pub fn base_url(&self) -> String {
        format!("http://{}/{VERSION}", self.shared.addr)
    }

    /// Every send received so far, in order (messages, not mark-as-read).
    pub fn sent(&self) -> Vec<Recorded> {
        self.shared.lock().sent.clone()
    }

    /// Mark-as-read calls received (wamids).
    pub fn read_marks(&self) -> Vec<String> {
        self.shared.lock().read_marks.clone()
    }

    /// Queue answers for the next sends, consumed in order; when empty the fake accepts and answers a fresh wamid `wamid.fake.<n>`.
    ///
    /// Only sends that pass the token and body checks consume an answer.
    pub fn script(&self, answers: Vec<Scripted>) {
        self.shared.lock().script.extend(answers);
    }

    /// Registers a media object downloadable by id (URL expires after `ttl`).
    ///
    /// Every lookup of the id hands out a fresh URL, valid for `ttl` from then.
    pub fn add_media(&self, media_id: &str, mime: &str, bytes: Vec<u8>, ttl: Duration) {
        self.shared.lock().media.insert(
            media_id.to_string(),
            Media {
                mime: mime.to_string(),
                bytes,
                ttl,
            },
        );
    }

    /// The next `n` media URLs handed out are already expired, as if the
    /// downloader had waited too long after looking the media up.
    pub fn expire_next_media_urls(&self, n: usize) {
        self.shared.lock().expire_next_links += n;
    }

    /// Media ids looked up (`GET /{v}/{media_id}`) so far, in order.
    pub fn media_lookups(&self) -> Vec<String> {
        self.shared.lock().media_lookups.clone()
    }

    /// Waits (no sleeps: use tokio::sync::Notify or a watch channel) until at least `n` sends were recorded or the timeout passes; returns the sends.
    pub async fn wait_for_sends(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let mut count = self.shared.sends.subscribe();
        let _ = tokio::time::timeout(timeout, count.wait_for(|count| *count >= n)).await;
        self.sent()
    }

    /// Stops the server.
    ///
    /// It stops accepting at once (asynchronously: the port closes shortly
    /// after) and lets requests in progress finish; delayed answers are cut short.
    pub fn shutdown(&self) {
        self.shared.stopping.send_replace(true);
    }
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `POST /{v}/{phone_number_id}/messages`: a send or a mark-as-read.
async fn post_messages(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(connection): ConnectInfo<ConnectionKill>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = serde_json::from_slice::<Value>(&raw);
    let body = match &parsed {
        Ok(body) => body.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&raw).into_owned()),
    };
    if body.get("status").and_then(Value::as_str) == Some("read") {
        return mark_read(&shared, authorization.as_deref(), &body);
    }

    let mut recorded = Recorded {
        phone_number_id,
        body,
        authorization,
        wamid: None,
    };
    let answer = if !has_bearer(recorded.authorization.as_deref()) {
        Answer::Refuse(missing_token())
    } else if let Err(e) = &parsed {
        Answer::Refuse(Refused::invalid(100, format!("the body is not JSON: {e}")))
    } else if let Err(refusal) = check_body(&recorded.body) {
        Answer::Refuse(Refused::invalid(refusal.code, refusal.reason))
    } else {
        let scripted = shared.lock().script.pop_front();
        match scripted {
            None => Answer::Accept(Duration::ZERO),
            Some(Scripted::Delay(d)) => Answer::Accept(d),
            Some(Scripted::Error {
                http_status,
                code,
                message,
            }) => Answer::Refuse(Refused {
                status: StatusCode::from_u16(http_status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                code,
                message,
                details: None,
            }),
            Some(Scripted::Status(status)) => Answer::Status(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            ),
            Some(Scripted::Drop) => Answer::Drop,
        }
    };

    // Record before answering: a delayed or dropped answer still means Meta got it.
    let (wamid, trace) = {
        let mut inner = shared.lock();
        inner.next_trace += 1;
        let wamid = if let Answer::Accept(_) = answer {
            inner.next_wamid += 1;
            Some(format!("wamid.fake.{}", inner.next_wamid))
        } else {
            None
        };
        recorded.wamid = wamid.clone();
        inner.sent.push(recorded.clone());
        shared.sends.send_replace(inner.sent.len());
        (wamid, inner.next_trace)
    };

    match answer {
        Answer::Refuse(refused) => refused.into_response(trace),
        Answer::Status(status) => status.into_response(),
        Answer::Drop => {
            connection.kill();
            // The connection is gone; this future is dropped with it.
            std::future::pending::<Response>().await
        }
        Answer::Accept(delay) => {
            if !delay.is_zero() {
                let mut stopping = shared.stopping.subscribe();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stopping.wait_for(|stop| *stop) => {}
                }
            }
            let input = recorded
                .body
                .get("to")
                .or_else(|| recorded.body.get("recipient"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let contact = if recorded.body.get("to").is_some() {
                let wa_id: String = input.chars().filter(char::is_ascii_digit).collect();
                json!({ "input": input, "wa_id": wa_id })
            } else {
                json!({ "input": input, "user_id": input })
            };
            Json(json!({
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{ "id": wamid, "message_status": "accepted" }],
            }))
            .into_response()
        }
    }
}

/// How the fake answers one send.
enum Answer {
    Accept(Duration),
    Refuse(Refused),
    Status(StatusCode),
    Drop,
}

/// A Graph-shaped error answer.
struct Refused {
    status: StatusCode,
    code: i64,
    message: String,
    details: Option<String>,
}

impl Refused {
    /// An invalid-parameter refusal, as Meta words them.
    fn invalid(code: i64, details: String) -> Refused {
        let message = if code == 131009 {
            "Parameter value is not valid"
        } else {
            "Invalid parameter"
        };
        Refused {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.to_string(),
            details: Some(details),
        }
    }

    fn into_response(self, trace: u64) -> Response {
        let mut error = json!({
            "message": format!("(#{}) {}", self.code, self.message),
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": format!("Afake{trace}"),
        });
        if let Some(details) = self.details {
            error["error_data"] = json!({ "messaging_product": "whatsapp", "details": details });
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

fn has_bearer(authorization: Option<&str>) -> bool {
    authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|token| !token.trim().is_empty())
}

fn missing_token() -> Refused {
    Refused {
        status: StatusCode::UNAUTHORIZED,
        code: 190,
        message: "Invalid OAuth access token - Cannot parse access token".to_string(),
        details: None,
    }
}

fn next_trace(shared: &Shared) -> u64 {
    let mut inner = shared.lock();
    inner.next_trace += 1;
    inner.next_trace
}

/// The mark-as-read form of `POST /messages`.
fn mark_read(shared: &Shared, authorization: Option<&str>, body: &Value) -> Response {
    if !has_bearer(authorization) {
        return missing_token().into_response(next_trace(shared));
    }
    let wamid = body.get("message_id").and_then(Value::as_str);
    match wamid {
        Some(wamid)
            if body.get("messaging_product").and_then(Value::as_str) == Some("whatsapp") =>
        {
            shared.lock().read_marks.push(wamid.to_string());
            Json(json!({ "success": true })).into_response()
        }
        _ => Refused::invalid(
            100,
            "mark-as-read needs messaging_product \"whatsapp\" and message_id".to_string(),
        )
        .into_response(next_trace(shared)),
    }
}

/// `GET /{v}/{media_id}`: the media's metadata and a fresh download URL.
async fn get_media(
    State(shared): State<Arc<Shared>>,
    Path((_version, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !has_bearer(authorization) {
        return missing_token().into_response(next_trace(&shared));
    }
    let mut inner = shared.lock();
    inner.media_lookups.push(media_id.clone());
    inner.next_trace += 1;
    let trace = inner.next_trace;
    let Some(media) = inner.media.get(&media_id) else {
        drop(inner);
        return Refused::invalid(
            100,
            format!("Unsupported get request. Object with ID '{media_id}' does not exist"),
        )
        .into_response(trace);
    };
    let (mime, size, ttl) = (media.mime.clone(), media.bytes.len(), media.ttl);
    // Meta gives a sha256 too; its encoding is opaque to us, so any stable text will do.
    let sha256 = format!("fake-sha256-{media_id}");
    let expires_at = if inner.expire_next_links > 0 {
        inner.expire_next_links -= 1;
        Instant::now()
    } else {
        Instant::now() + ttl
    };
    inner.next_link += 1;
    let token = format!("m{}", inner.next_link);
    inner.links.insert(
        token.clone(),
        Link {
            media_id: media_id.clone(),
            expires_at,
        },
    );
    drop(inner);
    Json(json!({
        "messaging_product": "whatsapp",
        "url": format!("http://{}/media-download/{token}", shared.addr),
        "mime_type": mime,
        "sha256": sha256,
        "file_size": size,
        "id": media_id,
    }))
    .into_response()
}

/// `GET /media-download/{token}`: the bytes, with the Bearer, before expiry.
async fn download_media(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !has_bearer(authorization) {
        return missing_token().into_response(next_trace(&shared));
    }
    let inner = shared.lock();
    let media = inner
        .links
        .get(&token)
        // Expired when its time has come: a zero ttl is expired at once.
        .filter(|link| Instant::now() < link.expires_at)
        .and_then(|link| inner.media.get(&link.media_id));
    match media {
        Some(media) => (
            [(header::CONTENT_TYPE, media.mime.clone())],
            media.bytes.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Lets a handler close its own connection without answering ([`Scripted::Drop`]).
///
/// axum gives handlers no way to abort a connection, so each accepted stream
/// carries a switch; once thrown, its reads and writes fail, hyper (which
/// keeps reading while a request is in progress, to notice clients leaving)
/// sees the error and closes the socket.
#[derive(Clone, Default)]
struct ConnectionKill(Arc<KillSwitch>);

#[derive(Default)]
struct KillSwitch {
    killed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl ConnectionKill {
    fn kill(&self) {
        self.0.killed.store(true, Ordering::SeqCst);
        let waker = self
            .0
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether the switch was thrown; otherwise remembers who to wake when it is.
    fn is_killed(&self, cx: &Context<'_>) -> bool {
        if self.0.killed.load(Ordering::SeqCst) {
            return true;
        }
        *self.0.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // Thrown between the check and storing the waker: it found no waker.
        self.0.killed.load(Ordering::SeqCst)
    }
}

impl Connected<axum::serve::IncomingStream<'_, KillableListener>> for ConnectionKill {
    fn connect_info(stream: axum::serve::IncomingStream<'_, KillableListener>) -> Self {
        stream.io().kill.clone()
    }
}

/// A TCP listener whose connections carry a [`ConnectionKill`].
struct KillableListener(TcpListener);

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    let kill = ConnectionKill::default();
                    return (KillableStream { tcp, kill }, addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: give the system a moment.
                    tracing::warn!("fake Graph API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A TCP stream that fails every read and write once its switch is thrown.
struct KillableStream {
    tcp: TcpStream,
    kill: ConnectionKill,
}

fn killed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "connection dropped by the fake Graph API script",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.kill.is_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.kill.is_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.kill.is_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

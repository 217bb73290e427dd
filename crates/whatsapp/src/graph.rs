//! The Graph API client: sends messages, marks inbound messages read and
//! downloads media, and sorts every failure into what the sender must do
//! about it ([`ErrorClass`], whatsapp.md §9).
//!
//! Meta answers most failures with HTTP 400 whatever their nature, so the
//! class comes from the Graph error `code`, never from the HTTP status; the
//! status only matters when there is no Graph error body (proxies, outages).
//! What Meta would refuse anyway (too long a text, a fourth button) is refused
//! here before any request leaves, with the same rules the fake server
//! enforces ([`check_body`]).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// What to send. Serialises to the Graph API body (with messaging_product,
/// recipient_type "individual", to, optional context.message_id and
/// biz_opaque_callback_data added by the client).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Outgoing {
    /// A free-form text (≤ 4096 characters, only inside the 24-hour window).
    Text {
        /// The text itself.
        body: String,
    },
    /// An approved template; `params` fill the body component's `{{n}}` in order.
    Template {
        /// Template name as approved by Meta.
        name: String,
        /// Language code, e.g. `pt_BR`.
        language: String,
        /// Body parameters, sent as text parameters (no component when empty).
        params: Vec<String>,
    },
    /// An interactive message with up to 3 reply buttons.
    Buttons {
        /// The message text above the buttons (≤ 1024 characters).
        body: String,
        /// `(id, title)` per button; titles ≤ 20 characters and unique.
        buttons: Vec<(String, String)>,
    },
    /// A media message, by uploaded media id or by a link Meta fetches.
    Media {
        /// `image`, `audio`, `video`, `document` or `sticker`.
        kind: String,
        /// An uploaded media id (preferred by Meta), exclusive with `link`.
        id: Option<String>,
        /// A public URL Meta downloads, exclusive with `id`.
        link: Option<String>,
        /// Caption (image, video, document only).
        caption: Option<String>,
        /// File name shown to the customer (document only).
        filename: Option<String>,
    },
}

/// One send: who to, what, answering which message, with which opaque id echoed back in statuses.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SendRequest {
    /// The business number sending (its Graph id, not the display number).
    pub phone_number_id: String,
    /// The customer: a wa_id (digits), or a BSUID (`BR.…`), which goes in `recipient`.
    pub to: String,
    /// What to send.
    pub message: Outgoing,
    /// The wamid being answered: shown as a quoted reply.
    pub reply_to: Option<String>,
    /// Echoed back as `biz_opaque_callback_data` in status webhooks (the outbox row id).
    pub callback_data: Option<String>,
}

/// Meta accepted the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The new message's id; statuses refer to it.
    pub wamid: String,
    /// The recipient's wa_id as Meta resolved it (may differ from what was sent; absent for BSUID sends).
    pub wa_id: Option<String>,
    /// `accepted`, `held_for_quality_assessment`, `paused`, when Meta says.
    pub message_status: Option<String>,
}

/// How the sender must treat a failure (whatsapp.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later with backoff (2, 4, 80007, 130429, 131016, 131057, 133004, 131056 pair rate …).
    Transient,
    /// It may have been sent (timeout after the request left, 131000, 1, 5xx without body): never resend blindly; mark uncertain.
    Ambiguous,
    /// Never retry (bad parameters, undeliverable, template problems, unknown codes).
    Permanent,
    /// 131047: the 24-hour window is closed; only a template can go.
    WindowClosed,
    /// Token/permission/account problems (0, 3, 10, 190, 200–299, 131005, 368, 131031, …): pause sending for that number and alert.
    Operations,
}

impl ErrorClass {
    /// What a person reading the error should understand from the class.
    fn advice(self) -> &'static str {
        match self {
            ErrorClass::Transient => "retry later",
            ErrorClass::Ambiguous => "it may have been sent, do not resend blindly",
            ErrorClass::Permanent => "do not retry",
            ErrorClass::WindowClosed => "the 24-hour window is closed, send a template",
            ErrorClass::Operations => "check the token and the account, sending paused",
        }
    }
}

/// A failed call, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", describe(.class, .code, .http_status, .message))]
pub struct GraphError {
    /// What the caller must do about it.
    pub class: ErrorClass,
    /// The Graph error code, when Meta sent one.
    pub code: Option<i64>,
    /// The HTTP status, when an answer came at all.
    pub http_status: Option<u16>,
    /// Meta's message (with `error_data.details`), or what went wrong locally.
    pub message: String,
    /// Meta's trace id, to quote to Meta support.
    pub fbtrace_id: Option<String>,
}

fn describe(class: &ErrorClass, code: &Option<i64>, status: &Option<u16>, message: &str) -> String {
    let head = match code {
        Some(code) => format!("WhatsApp Graph API error {code}"),
        None => "WhatsApp Graph API call failed".to_string(),
    };
    let status = match status {
        Some(status) => format!("HTTP {status}, "),
        None => String::new(),
    };
    format!("{head} ({status}{}): {message}", class.advice())
}

impl GraphError {
    fn local(class: ErrorClass, message: impl Into<String>) -> GraphError {
        GraphError {
            class,
            code: None,
            http_status: None,
            message: message.into(),
            fbtrace_id: None,
        }
    }

    /// Reads and downloads can be repeated safely: "maybe done" is just "retry later".
    fn for_idempotent_call(mut self) -> GraphError {
        if self.class == ErrorClass::Ambiguous {
            self.class = ErrorClass::Transient;
        }
        self
    }
}

/// The class of a Graph error code.
pub fn classify(code: i64) -> ErrorClass {
    use ErrorClass::*;
    match code {
        131047 => WindowClosed,
        // "Unknown error" and "something went wrong": Meta may have accepted it.
        1 | 131000 => Ambiguous,
        // Overload, rate limits, maintenance.
        2 | 4 | 80007 | 130429 | 131016 | 131056 | 131057 | 133004 => Transient,
        // Token, permissions, account and number state; 131048 (spam rate
        // limit) asks to stop the number's sending, which is the same action.
        0 | 3 | 10 | 190 | 200..=299 | 131005 | 131048 => Operations,
        368 | 131031 | 131042 | 131045 | 131037 | 133010 => Operations,
        // Our bug, the recipient, or the template: retrying cannot help.
        // 131049 (per-user marketing cap) must not be retried within 24 h; the
        // classes have no "deferred", and a loop is worse than a dropped
        // marketing message, so it is permanent here.
        100 | 131008 | 131009 | 131021 | 135000 => Permanent,
        131026 | 131049 | 131050 | 131051 | 131052 | 131053 | 131062 | 130472 => Permanent,
        132000 | 132001 | 132005 | 132007 | 132012 | 132015 | 132016 | 132068 | 132069 => Permanent,
        // Unknown codes (130403 included): never loop on what we don't understand.
        _ => Permanent,
    }
}

/// The default request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a connection may take; failing here means nothing was sent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Talks to the Graph API (or the fake one).
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    token: String,
    timeout: Duration,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("GraphClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// `base` like `https://graph.facebook.com/v25.0` (no trailing slash needed), Bearer `token`; a request timeout (default 10 s, configurable via `with_timeout`).
    pub fn new(base: &str, token: &str) -> GraphClient {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        GraphClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the timeout of each request (the whole exchange, answer included).
    pub fn with_timeout(mut self, t: Duration) -> GraphClient {
        self.timeout = t;
        self
    }

    /// POST {base}/{phone_number_id}/messages.
    pub async fn send(&self, req: &SendRequest) -> Result<Accepted, GraphError> {
        check_graph_id("phone number id", &req.phone_number_id)?;
        let body = request_body(req);
        if let Err(refusal) = check_body(&body) {
            return Err(GraphError::local(
                ErrorClass::Permanent,
                format!("refused before sending: {}", refusal.reason),
            ));
        }
        let url = format!("{}/{}/messages", self.base, req.phone_number_id);
        let answer = self.post_json(&url, &body).await?;
        parse_accepted(&answer).ok_or_else(|| {
            // Meta said yes but we cannot tell to what: the message may be out.
            GraphError::local(
                ErrorClass::Ambiguous,
                format!("send answered with success but without a message id: {answer}"),
            )
        })
    }

    /// Marks an inbound message read (optionally with a typing indicator).
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        wamid: &str,
        typing: bool,
    ) -> Result<(), GraphError> {
        check_graph_id("phone number id", phone_number_id)?;
        let mut body = json!({
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": wamid,
        });
        if typing {
            body["typing_indicator"] = json!({"type": "text"});
        }
        let url = format!("{}/{}/messages", self.base, phone_number_id);
        self.post_json(&url, &body)
            .await
            .map(|_| ())
            .map_err(GraphError::for_idempotent_call)
    }

    /// GET {base}/{media_id} → its short-lived URL, mime type, size; then GET that URL with the same Bearer → bytes (re-fetch the URL once on 404).
    ///
    /// Both steps are reads, so what would be [`ErrorClass::Ambiguous`] for a
    /// send is [`ErrorClass::Transient`] here. A URL that is still 404 after
    /// one re-fetch is Transient too: the media job retries later and gives
    /// up when the media id expires (7 days).
    pub async fn download_media(&self, media_id: &str) -> Result<(Vec<u8>, String), GraphError> {
        self.download_media_inner(media_id)
            .await
            .map_err(GraphError::for_idempotent_call)
    }

    async fn download_media_inner(&self, media_id: &str) -> Result<(Vec<u8>, String), GraphError> {
        check_graph_id("media id", media_id)?;
        let mut refetched = false;
        loop {
            let info = self.media_info(media_id).await?;
            let response = self
                .http
                .get(&info.url)
                .bearer_auth(&self.token)
                .timeout(self.timeout)
                .send()
                .await
                .map_err(network_error)?;
            let status = response.status();
            if status == reqwest::StatusCode::NOT_FOUND && !refetched {
                // Download URLs live 5 minutes: ask for a fresh one, once.
                refetched = true;
                continue;
            }
            let header_mime = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let bytes = response.bytes().await.map_err(network_error)?;
            if !status.is_success() {
                let mut error = error_from_answer(status.as_u16(), &bytes);
                if status == reqwest::StatusCode::NOT_FOUND {
                    error.class = ErrorClass::Transient;
                    error.message = format!(
                        "media {media_id}: download URL answered 404 twice, even after a re-fetch"
                    );
                }
                return Err(error);
            }
            if let Some(expected) = info.file_size {
                if expected != bytes.len() as u64 {
                    return Err(GraphError::local(
                        ErrorClass::Transient,
                        format!(
                            "media {media_id}: downloaded {} bytes, Meta announced {expected}",
                            bytes.len()
                        ),
                    ));
                }
            }
            let mime = info
                .mime_type
                .or(header_mime)
                .unwrap_or_else(|| "application/octet-stream".to_string());
            return Ok((bytes.to_vec(), mime));
        }
    }

    async fn media_info(&self, media_id: &str) -> Result<MediaInfo, GraphError> {
        let url = format!("{}/{}", self.base, media_id);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(network_error)?;
        let answer = read_answer(response).await?;
        let url = answer
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                GraphError::local(
                    ErrorClass::Transient,
                    format!("media {media_id}: the Graph answer has no url: {answer}"),
                )
            })?
            .to_string();
        Ok(MediaInfo {
            url,
            mime_type: answer
                .get("mime_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            // Documented as a number, seen as a string: accept both.
            file_size: answer.get("file_size").and_then(|v| match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            }),
        })
    }

    async fn post_json(&self, url: &str, body: &Value) -> Result<Value, GraphError> {
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .json(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(network_error)?;
        read_answer(response).await
    }
}

struct MediaInfo {
    url: String,
    mime_type: Option<String>,
    file_size: Option<u64>,
}

/// Ids go into the URL path: anything but a plain token would change the call.
fn check_graph_id(what: &str, id: &str) -> Result<(), GraphError> {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(GraphError::local(
            ErrorClass::Permanent,
            format!("refused before sending: {what} {id:?} is not a Graph id"),
        ))
    }
}

/// Reads a Graph answer: the JSON on 2xx, a classified error otherwise.
async fn read_answer(response: reqwest::Response) -> Result<Value, GraphError> {
    let status = response.status();
    let bytes = response.bytes().await.map_err(network_error)?;
    if !status.is_success() {
        return Err(error_from_answer(status.as_u16(), &bytes));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        GraphError::local(
            ErrorClass::Ambiguous,
            format!("HTTP {status} with an unreadable answer ({e})"),
        )
    })
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
    code: Option<i64>,
    error_data: Option<ErrorData>,
    fbtrace_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Classifies a non-2xx answer: by Graph error code when there is one, by
/// HTTP status otherwise.
fn error_from_answer(status: u16, bytes: &[u8]) -> GraphError {
    let envelope = serde_json::from_slice::<ErrorEnvelope>(bytes).ok();
    let error = match envelope {
        Some(ErrorEnvelope {
            error:
                ErrorBody {
                    message,
                    code: Some(code),
                    error_data,
                    fbtrace_id,
                },
        }) => {
            let mut text = message.unwrap_or_else(|| format!("error code {code}"));
            if let Some(details) = error_data.and_then(|d| d.details) {
                if !details.is_empty() && details != text {
                    text = format!("{text}: {details}");
                }
            }
            GraphError {
                class: classify(code),
                code: Some(code),
                http_status: Some(status),
                message: text,
                fbtrace_id,
            }
        }
        _ => {
            let class = match status {
                // An outage or a proxy: the request may have been processed.
                408 | 500..=599 => ErrorClass::Ambiguous,
                401 | 403 => ErrorClass::Operations,
                429 => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            };
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim();
            let message = if text.is_empty() {
                format!("HTTP {status} without an error body")
            } else {
                let short: String = text.chars().take(200).collect();
                format!("HTTP {status} without a Graph error: {short}")
            };
            GraphError {
                class,
                code: None,
                http_status: Some(status),
                message,
                fbtrace_id: None,
            }
        }
    };
    tracing::warn!(
        code = error.code,
        http_status = error.http_status,
        fbtrace_id = error.fbtrace_id.as_deref(),
        class = ?error.class,
        "Graph API call failed: {}",
        error.message
    );
    error
}

/// Classifies a failure to get an answer at all.
///
/// reqwest cannot always tell whether the request reached Meta. A failure
/// to connect (refused, unreachable, connect timeout) happened before
/// anything was written: Transient. Everything else — a timeout while
/// waiting for the answer, a connection closed mid-exchange — may have
/// happened after Meta received the message: Ambiguous. A request timeout
/// that fires while still connecting also lands here; counting it as
/// "maybe sent" only costs a wait, counting a sent message as unsent costs a
/// duplicate to the customer.
fn network_error(error: reqwest::Error) -> GraphError {
    let class = if error.is_builder() {
        // The base URL or the token cannot form a request: configuration.
        ErrorClass::Operations
    } else if error.is_connect() {
        ErrorClass::Transient
    } else {
        ErrorClass::Ambiguous
    };
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut message = format!("request {what}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    GraphError::local(class, message)
}

fn parse_accepted(answer: &Value) -> Option<Accepted> {
    let message = answer.get("messages")?.get(0)?;
    let wamid = message.get("id")?.as_str()?.to_string();
    Some(Accepted {
        wamid,
        wa_id: answer
            .get("contacts")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("wa_id"))
            .and_then(Value::as_str)
            .map(str::to_string),
        message_status: message
            .get("message_status")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// A BSUID: ISO country code, a dot, then the id (`BR.1234…`, `BR.ENT.…`).
fn is_bsuid(to: &str) -> bool {
    let bytes = to.as_bytes();
    bytes.len() > 3 && bytes[..2].iter().all(u8::is_ascii_uppercase) && bytes[2] == b'.'
}

/// The Graph API body for a request (exposed for tests and the fake server).
pub fn request_body(req: &SendRequest) -> Value {
    let mut body = Map::new();
    body.insert("messaging_product".into(), json!("whatsapp"));
    body.insert("recipient_type".into(), json!("individual"));
    // Meta wants BSUIDs in `recipient` (whatsapp.md §6); phones go in `to`.
    let field = if is_bsuid(&req.to) { "recipient" } else { "to" };
    body.insert(field.into(), json!(req.to));
    if let Some(reply_to) = &req.reply_to {
        body.insert("context".into(), json!({ "message_id": reply_to }));
    }
    if let Some(data) = &req.callback_data {
        body.insert("biz_opaque_callback_data".into(), json!(data));
    }
    let (kind, content) = match &req.message {
        Outgoing::Text { body } => ("text", json!({ "body": body, "preview_url": false })),
        Outgoing::Template {
            name,
            language,
            params,
        } => {
            let mut template = json!({ "name": name, "language": { "code": language } });
            if !params.is_empty() {
                let parameters: Vec<Value> = params
                    .iter()
                    .map(|p| json!({ "type": "text", "text": p }))
                    .collect();
                template["components"] = json!([{ "type": "body", "parameters": parameters }]);
            }
            ("template", template)
        }
        Outgoing::Buttons { body, buttons } => {
            let buttons: Vec<Value> = buttons
                .iter()
                .map(
                    |(id, title)| json!({ "type": "reply", "reply": { "id": id, "title": title } }),
                )
                .collect();
            (
                "interactive",
                json!({
                    "type": "button",
                    "body": { "text": body },
                    "action": { "buttons": buttons },
                }),
            )
        }
        Outgoing::Media {
            kind,
            id,
            link,
            caption,
            filename,
        } => {
            let mut media = Map::new();
            for (key, value) in [
                ("id", id),
                ("link", link),
                ("caption", caption),
                ("filename", filename),
            ] {
                if let Some(value) = value {
                    media.insert(key.into(), json!(value));
                }
            }
            (kind.as_str(), Value::Object(media))
        }
    };
    body.insert("type".into(), json!(kind));
    body.insert(kind.to_string(), content);
    Value::Object(body)
}

/// Why Meta would refuse a message body, with the code it would answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    /// The Graph error code Meta answers (100 or 131009).
    pub(crate) code: i64,
    /// What is wrong, for a person.
    pub(crate) reason: String,
}

fn refuse(code: i64, reason: impl Into<String>) -> Result<(), Refusal> {
    Err(Refusal {
        code,
        reason: reason.into(),
    })
}

/// Meta's limits on a send body (whatsapp.md §8), shared by the client (which
/// refuses before sending) and the fake server (which answers like Meta).
pub(crate) fn check_body(body: &Value) -> Result<(), Refusal> {
    const INVALID_PARAMETER: i64 = 100;
    const INVALID_VALUE: i64 = 131009;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let chars = |s: &str| s.chars().count();

    if body.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return refuse(INVALID_PARAMETER, "messaging_product must be \"whatsapp\"");
    }
    // Meta takes `to` when both are present.
    let to = text(body.get("to")).or_else(|| text(body.get("recipient")));
    if to.is_none_or(|to| to.is_empty()) {
        return refuse(
            INVALID_PARAMETER,
            "the parameter to (or recipient) is required",
        );
    }
    let kind = text(body.get("type")).unwrap_or_else(|| "text".to_string());
    let content = body.get(&kind);
    match kind.as_str() {
        "text" => {
            let Some(text) = text(content.and_then(|c| c.get("body"))) else {
                return refuse(INVALID_PARAMETER, "text.body is required");
            };
            if text.is_empty() {
                return refuse(INVALID_PARAMETER, "text.body is empty");
            }
            if chars(&text) > 4096 {
                return refuse(
                    INVALID_PARAMETER,
                    format!("text.body has {} characters, at most 4096", chars(&text)),
                );
            }
        }
        "template" => {
            let name = text(content.and_then(|c| c.get("name")));
            let language = text(
                content
                    .and_then(|c| c.get("language"))
                    .and_then(|l| l.get("code")),
            );
            if name.is_none_or(|n| n.is_empty()) || language.is_none_or(|l| l.is_empty()) {
                return refuse(
                    INVALID_PARAMETER,
                    "template.name and template.language.code are required",
                );
            }
        }
        "interactive" => {
            let interactive_type = text(content.and_then(|c| c.get("type")));
            if interactive_type.as_deref() == Some("button") {
                return check_buttons(content, INVALID_PARAMETER, INVALID_VALUE);
            }
        }
        "image" | "audio" | "video" | "document" | "sticker" => {
            let Some(media) = content.and_then(Value::as_object) else {
                return refuse(INVALID_PARAMETER, format!("{kind} object is required"));
            };
            if media.contains_key("id") == media.contains_key("link") {
                return refuse(
                    INVALID_PARAMETER,
                    format!("{kind} needs exactly one of id and link"),
                );
            }
            if media.contains_key("caption") && matches!(kind.as_str(), "audio" | "sticker") {
                return refuse(INVALID_PARAMETER, format!("{kind} cannot have a caption"));
            }
            if media.contains_key("filename") && kind != "document" {
                return refuse(
                    INVALID_PARAMETER,
                    format!("only a document has a filename, not {kind}"),
                );
            }
        }
        "location" | "contacts" | "reaction" => {}
        other => {
            return refuse(INVALID_PARAMETER, format!("unknown message type {other:?}"));
        }
    }
    Ok(())
}

fn check_buttons(
    interactive: Option<&Value>,
    invalid_parameter: i64,
    invalid_value: i64,
) -> Result<(), Refusal> {
    let body = interactive
        .and_then(|i| i.get("body"))
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if body.is_empty() {
        return refuse(invalid_parameter, "interactive.body.text is required");
    }
    if body.chars().count() > 1024 {
        return refuse(
            invalid_value,
            format!(
                "interactive.body.text has {} characters, at most 1024",
                body.chars().count()
            ),
        );
    }
    let buttons = interactive
        .and_then(|i| i.get("action"))
        .and_then(|a| a.get("buttons"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if buttons.is_empty() || buttons.len() > 3 {
        return refuse(
            invalid_value,
            format!("{} buttons, a button message has 1 to 3", buttons.len()),
        );
    }
    let mut seen_titles = Vec::new();
    let mut seen_ids = Vec::new();
    for button in buttons {
        let reply = button.get("reply");
        let field = |name: &str| {
            reply
                .and_then(|r| r.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let (id, title) = (field("id"), field("title"));
        let title_chars = title.chars().count();
        if title_chars == 0 || title_chars > 20 {
            return refuse(
                invalid_value,
                format!("button title {title:?} has {title_chars} characters, 1 to 20 allowed"),
            );
        }
        if id.is_empty() || id.chars().count() > 256 {
            return refuse(
                invalid_value,
                format!("button id {id:?} must have 1 to 256 characters"),
            );
        }
        if seen_titles.contains(&title) || seen_ids.contains(&id) {
            return refuse(
                invalid_value,
                format!("button {id:?} / {title:?} repeats an id or a title"),
            );
        }
        seen_titles.push(title);
        seen_ids.push(id);
    }
    Ok(())
}

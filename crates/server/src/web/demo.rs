//! The demo (`serve --demo`): users to log in with, and a phone simulator
//! where anyone plays customers on each WhatsApp number. The simulator sends
//! properly signed webhooks to this server over HTTP, as Meta would, and
//! shows what the fake Graph API received in return.

use crate::web::i18n;
use crate::App;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Value};
use serde::Deserialize;
use switchboard_store::Store;
use switchboard_whatsapp::signature::sign;
use switchboard_whatsapp::webhook::{text_message_body, Metadata};

/// A demo login.
pub struct DemoUser {
    /// E-mail (a member of the example workflows' teams).
    pub email: &'static str,
    /// Name.
    pub name: &'static str,
    /// Role.
    pub role: &'static str,
    /// What they see.
    pub what: &'static str,
}

/// The demo's password for every demo user.
pub const PASSWORD: &str = "switchboard-demo";

/// The demo's users: an admin, and agents of the example teams.
pub const USERS: &[DemoUser] = &[
    DemoUser {
        email: "admin@acme.com",
        name: "Alex Admin",
        role: "admin",
        what: "every board",
    },
    DemoUser {
        email: "ana@acme.com",
        name: "Ana",
        role: "agent",
        what: "support (frontline)",
    },
    DemoUser {
        email: "davi@acme.com",
        name: "Davi",
        role: "agent",
        what: "support (billing)",
    },
    DemoUser {
        email: "rafael@acme.com",
        name: "Rafael",
        role: "agent",
        what: "sales (São Paulo)",
    },
    DemoUser {
        email: "juliana@acme.com",
        name: "Juliana",
        role: "manager",
        what: "HR",
    },
];

/// Creates (or refreshes) the demo users.
pub async fn seed(store: &Store) -> Result<(), String> {
    let hash = crate::accounts::hash_password(PASSWORD)?;
    for u in USERS {
        store
            .upsert_user(u.email, u.name, u.role, Some(&hash), crate::now_ms())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn numbers(app: &App) -> Vec<(String, String, String, Option<String>)> {
    let Some(wf) = app.workflow.borrow().clone() else {
        return Vec::new();
    };
    wf.pipes
        .iter()
        .flat_map(|p| {
            p.numbers.iter().map(|n| {
                (
                    n.display.clone(),
                    n.digits.clone(),
                    p.name.clone(),
                    n.phone_number_id.clone(),
                )
            })
        })
        .collect()
}

/// Who is playing the customer.
#[derive(Deserialize, Default)]
pub(crate) struct Player {
    #[serde(default)]
    from: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    error: String,
}

fn not_demo() -> Response {
    (
        StatusCode::NOT_FOUND,
        "the phone simulator exists only in the demo (serve --demo)",
    )
        .into_response()
}

/// `GET /demo/phone`.
pub(crate) async fn phone(
    State(app): State<App>,
    headers: HeaderMap,
    Query(p): Query<Player>,
) -> Response {
    if !app.config.demo {
        return not_demo();
    }
    let lang = i18n::pick(
        None,
        headers.get("accept-language").and_then(|v| v.to_str().ok()),
    );
    let from = if p.from.is_empty() {
        "5511987650001".to_string()
    } else {
        p.from.clone()
    };
    let name = if p.name.is_empty() {
        "Maria Souza".to_string()
    } else {
        p.name.clone()
    };
    let sent_by_me: Vec<(i64, String)> = app
        .demo_log
        .lock()
        .map(|log| {
            log.iter()
                .filter(|(f, _, _)| *f == from)
                .map(|(_, at, text)| (*at, text.clone()))
                .collect()
        })
        .unwrap_or_default();
    let replies: Vec<String> = app
        .fake
        .as_ref()
        .map(|f| {
            f.sent()
                .into_iter()
                .filter(|s| s.wamid.is_some() && s.body["to"].as_str() == Some(from.as_str()))
                .map(|s| {
                    s.body["text"]["body"]
                        .as_str()
                        .map(str::to_string)
                        .or_else(|| {
                            s.body["template"]["name"]
                                .as_str()
                                .map(|n| format!("[template {n}]"))
                        })
                        .unwrap_or_else(|| "[message]".into())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut conversation: Vec<Value> = sent_by_me
        .iter()
        .map(|(_, text)| context! { direction => "in", text })
        .collect();
    conversation.extend(
        replies
            .iter()
            .map(|text| context! { direction => "out", text }),
    );
    let numbers: Vec<Value> = numbers(&app)
        .into_iter()
        .map(|(display, digits, pipe, _)| context! { display, digits, pipe })
        .collect();
    let error = (!p.error.is_empty()).then_some(p.error);
    app.pages.render(
        StatusCode::OK,
        "phone.html",
        context! { t => i18n::strings(lang), lang, numbers, from, name, to => p.to, conversation, error,
                   live => "/demo/events" },
    )
}

/// The simulator's form.
#[derive(Deserialize)]
pub(crate) struct PhoneForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    text: String,
}

/// `POST /demo/phone`: sends the message as a signed webhook to this server.
pub(crate) async fn send(State(app): State<App>, Form(form): Form<PhoneForm>) -> Response {
    if !app.config.demo {
        return not_demo();
    }
    let back = |error: &str| {
        let q = query_string(&[
            ("from", &form.from),
            ("name", &form.name),
            ("to", &form.to),
            ("error", error),
        ]);
        Redirect::to(&format!("/demo/phone?{q}")).into_response()
    };
    let from: String = form.from.chars().filter(char::is_ascii_digit).collect();
    if from.len() < 8 {
        return back("the customer's phone needs at least 8 digits");
    }
    if form.text.trim().is_empty() {
        return back("write a message first");
    }
    let Some((_, digits, _, id)) = numbers(&app).into_iter().find(|(_, d, _, _)| *d == form.to)
    else {
        return back("choose one of the company's numbers");
    };
    let meta = Metadata {
        phone_number_id: id.unwrap_or_else(|| format!("demo{digits}")),
        display_phone_number: digits,
    };
    let now = crate::now_ms();
    let wamid = format!("wamid.demo.{from}.{now}");
    let body = text_message_body(
        &meta,
        &from,
        &form.name,
        &wamid,
        now / 1000,
        form.text.trim(),
    );
    let secret = app.config.app_secrets.last().cloned().unwrap_or_default();
    let answer = reqwest::Client::new()
        .post(format!("{}/webhooks/whatsapp", app.self_url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(&secret, body.as_bytes()))
        .body(body)
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => {
            if let Ok(mut log) = app.demo_log.lock() {
                log.push((from.clone(), now, form.text.trim().to_string()));
            }
            let q = query_string(&[("from", &from), ("name", &form.name), ("to", &form.to)]);
            Redirect::to(&format!("/demo/phone?{q}")).into_response()
        }
        Ok(r) => back(&format!("the server answered {}", r.status())),
        Err(e) => back(&format!("the server could not be reached: {e}")),
    }
}

/// `GET /demo/events`: live updates for the simulator (no log-in in the demo).
pub(crate) async fn events(State(app): State<App>) -> Response {
    if !app.config.demo {
        return not_demo();
    }
    crate::web::pages::live_stream(&app)
}

/// `a=b&c=d`, percent-encoded, without the empty ones.
fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        out.append_pair(k, v);
    }
    out.finish()
}

/// Remembers nothing between requests but what the simulator sent.
pub(crate) type DemoLog = std::sync::Mutex<Vec<(String, i64, String)>>;

/// In the demo, plays Meta's part after a send: signed status webhooks
/// (sent, then delivered, then read) come back to this server, so the card
/// page shows its ticks move as it would with a real customer.
pub(crate) async fn statuses(
    fake: std::sync::Arc<switchboard_whatsapp::fake::FakeGraph>,
    server: String,
    secret: String,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let http = reqwest::Client::new();
    let mut seen = 0;
    loop {
        let sent = tokio::select! {
            sent = fake.wait_for_sends(seen + 1, std::time::Duration::from_secs(3600)) => sent,
            _ = stopping.wait_for(|s| *s) => return,
        };
        for s in sent.iter().skip(seen) {
            let Some(wamid) = s.wamid.clone() else {
                continue;
            };
            let (http, server, secret) = (http.clone(), server.clone(), secret.clone());
            let meta = Metadata {
                phone_number_id: s.phone_number_id.clone(),
                display_phone_number: String::new(),
            };
            let to = s.body["to"].as_str().unwrap_or("").to_string();
            let callback = s.body["biz_opaque_callback_data"]
                .as_str()
                .map(str::to_string);
            tokio::spawn(async move {
                for (status, after) in [("sent", 300), ("delivered", 1_000), ("read", 3_000)] {
                    // A phone takes a moment to receive and to be looked at.
                    tokio::time::sleep(std::time::Duration::from_millis(after)).await;
                    let body = switchboard_whatsapp::webhook::status_body(
                        &meta,
                        &wamid,
                        status,
                        crate::now_ms() / 1000,
                        &to,
                        callback.as_deref(),
                    );
                    let _ = http
                        .post(format!("{server}/webhooks/whatsapp"))
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", sign(&secret, body.as_bytes()))
                        .body(body)
                        .send()
                        .await;
                }
            });
        }
        seen = sent.len();
    }
}

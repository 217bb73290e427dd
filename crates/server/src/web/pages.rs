//! The pages agents and managers work in: their boards, a board, a card
//! (conversation, reply, move, history), and the live-update stream.

use crate::api::{self, ApiError};
use crate::web::session::{CsrfForm, Viewer};
use crate::App;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Value};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use switchboard_engine::{Event, ReplyBody};
use switchboard_store::{CardFilter, CardRow};

/// The message types the card page knows how to show; others are shown as
/// "unsupported content" with their type.
const KNOWN_TYPES: &[&str] = &[
    "text",
    "image",
    "sticker",
    "audio",
    "video",
    "document",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "template",
];

/// Cards shown per column before "+N more".
const PER_COLUMN: i64 = 50;

/// A page saying what went wrong, in the viewer's language.
pub(crate) fn error_page(
    app: &App,
    viewer: &Viewer,
    status: StatusCode,
    message: &str,
) -> Response {
    app.pages.render(
        status,
        "error.html",
        context! { t => viewer.t(), lang => viewer.lang, user => user(viewer), csrf => &viewer.csrf,
        title => status.canonical_reason().unwrap_or("Error"), message },
    )
}

/// The 403 page an agent gets on a page for managers and admins; `None`
/// for them.
fn agents_refused(app: &App, viewer: &Viewer) -> Option<Response> {
    (viewer.user.role == "agent").then(|| {
        error_page(
            app,
            viewer,
            StatusCode::FORBIDDEN,
            &viewer.t()["managers_only"],
        )
    })
}

fn user(viewer: &Viewer) -> Value {
    context! { name => &viewer.user.name, email => &viewer.user.email, role => &viewer.user.role }
}

fn failed(app: &App, viewer: &Viewer, e: ApiError) -> Response {
    let message = if e.status == StatusCode::NOT_FOUND {
        viewer.t()["not_found"].clone()
    } else {
        e.message
    };
    error_page(app, viewer, e.status, &message)
}

/// The agents as the engine knows them (none while it is not running here).
async fn agents(app: &App) -> Vec<crate::processor::AgentState> {
    let (answer, agents) = tokio::sync::oneshot::channel();
    if app
        .engine
        .send(crate::Command::Agents(answer))
        .await
        .is_err()
    {
        return Vec::new();
    }
    agents.await.unwrap_or_default()
}

/// The viewer's availability as the engine knows it: (online, capacity, load).
async fn availability(app: &App, email: &str) -> (bool, u32, u32) {
    agents(app)
        .await
        .into_iter()
        .find(|a| a.email.eq_ignore_ascii_case(email))
        .map(|a| (a.online, a.capacity, a.load))
        .unwrap_or((false, 5, 0))
}

/// The availability form.
#[derive(Deserialize)]
pub(crate) struct AvailabilityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    online: String,
    #[serde(default)]
    capacity: String,
}

/// `POST /availability`: online or away, and how many open cards at most;
/// assignment uses it at once (queued cards go to an agent coming online).
pub(crate) async fn set_availability(
    State(app): State<App>,
    viewer: Viewer,
    Form(form): Form<AvailabilityForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.csrf_refused(&app);
    }
    let capacity = match form.capacity.trim() {
        "" => None,
        c => match c.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) => Some(n),
            _ => {
                return error_page(
                    &app,
                    &viewer,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &viewer.t()["capacity_invalid"],
                )
            }
        },
    };
    let event = Event::Agent {
        email: viewer.user.email.clone(),
        online: Some(form.online == "yes"),
        capacity,
    };
    match api::engine_act(&app, event).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(e) => failed(&app, &viewer, e),
    }
}

/// The language form.
#[derive(Deserialize)]
pub(crate) struct LanguageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    language: String,
}

/// `POST /language`: the viewer's interface language, kept with them.
pub(crate) async fn set_language(
    State(app): State<App>,
    viewer: Viewer,
    Form(form): Form<LanguageForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.csrf_refused(&app);
    }
    let Some(language) = crate::web::i18n::LANGUAGES
        .iter()
        .find(|l| **l == form.language)
    else {
        return error_page(
            &app,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &viewer.t()["language_unknown"],
        );
    };
    match app
        .store
        .set_user_language(viewer.user.id, language, crate::now_ms())
        .await
    {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot store a language");
            error_page(
                &app,
                &viewer,
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
        }
    }
}

/// `GET /`: the boards the viewer may see.
pub(crate) async fn home(State(app): State<App>, viewer: Viewer) -> Response {
    let wf = match api::workflow(&app) {
        Ok(w) => w,
        Err(e) => return failed(&app, &viewer, e),
    };
    let (online, capacity, load) = availability(&app, &viewer.user.email).await;
    let mut pipes = Vec::new();
    for p in wf.pipes.iter().filter(|p| api::may_see(&viewer.user, p)) {
        let open = app.store.count_open(&p.name).await.unwrap_or(0);
        pipes.push(context! { name => &p.name, title => &p.title, open });
    }
    app.pages.render(
        StatusCode::OK,
        "home.html",
        context! { t => viewer.t(), lang => viewer.lang, user => user(&viewer), csrf => &viewer.csrf,
                   pipes, demo => app.config.demo, live => "/events",
                   online, capacity, load },
    )
}

/// Green when the team answered last, yellow while the customer waits, red
/// once an SLA ran out.
fn indicator(row: &CardRow) -> &'static str {
    if row.sla_state == "breached" {
        "red"
    } else {
        match row.last_responder.as_deref() {
            Some("team") => "green",
            Some("customer") => "yellow",
            _ => "none",
        }
    }
}

fn sla_text(row: &CardRow, t: &std::collections::BTreeMap<String, String>) -> String {
    let Some(due) = row.sla_due_at else {
        return String::new();
    };
    let left = (due - crate::now_ms()) / 60_000;
    if row.sla_state == "breached" || left < 0 {
        format!("{} {}", t["overdue"], minutes(-left))
    } else {
        format!("{} {}", t["due_in"], minutes(left))
    }
}

fn minutes(m: i64) -> String {
    if m >= 60 {
        format!("{}h{:02}", m / 60, m % 60)
    } else {
        format!("{m}m")
    }
}

fn tile(row: &CardRow, shown: &[String], t: &std::collections::BTreeMap<String, String>) -> Value {
    let view: serde_json::Value = serde_json::from_str(&row.view).unwrap_or_default();
    let contact = view["contact"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .or(view["contact"]["phone"].as_str())
        .unwrap_or("")
        .to_string();
    let fields: Vec<Value> = shown
        .iter()
        .filter_map(|f| {
            let v = &view["fields"][f];
            (!v.is_null()).then(|| context! { name => f, value => v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()) })
        })
        .collect();
    context! {
        id => view["id"].as_str().unwrap_or(""), contact, preview => &row.preview,
        assignee => &row.assignee, fields, indicator => indicator(row), sla_text => sla_text(row, t),
    }
}

/// The board's filters: `?show=mine|unassigned|overdue&q=words`.
#[derive(Deserialize, Default)]
pub(crate) struct BoardFilter {
    #[serde(default)]
    show: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    view: String,
    /// One column paged past its first cards: `?column=new&after=<card>`.
    #[serde(default)]
    column: String,
    #[serde(default)]
    after: Option<i64>,
}

impl BoardFilter {
    /// This board's address with the same filters, one column paged.
    fn href(&self, pipe: &str, page: Option<(&str, i64)>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("show", &self.show), ("view", &self.view), ("q", &self.q)] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        if let Some((column, after)) = page {
            q.append_pair("column", column);
            q.append_pair("after", &after.to_string());
        }
        let q = q.finish();
        if q.is_empty() {
            format!("/pipes/{pipe}")
        } else {
            format!("/pipes/{pipe}?{q}")
        }
    }
}

/// `GET /pipes/{pipe}`: a column per status with its count and cards.
pub(crate) async fn board(
    State(app): State<App>,
    viewer: Viewer,
    Path(pipe): Path<String>,
    Query(f): Query<BoardFilter>,
) -> Response {
    let wf = match api::workflow(&app) {
        Ok(w) => w,
        Err(e) => return failed(&app, &viewer, e),
    };
    let Some(p) = wf.pipe(&pipe).filter(|p| api::may_see(&viewer.user, p)) else {
        return error_page(
            &app,
            &viewer,
            StatusCode::NOT_FOUND,
            &viewer.t()["not_found"],
        );
    };
    let counts = app.store.count_by_status(&pipe).await.unwrap_or_default();
    let shown: Vec<String> = p
        .fields
        .iter()
        .filter(|f| f.shown)
        .map(|f| f.name.clone())
        .collect();
    let ids = if f.q.trim().is_empty() {
        None
    } else {
        Some(
            app.store
                .search(&pipe, &f.q, crate::SEARCH_LIMIT)
                .await
                .unwrap_or_default(),
        )
    };
    // The workflow's views are saved filters, evaluated by the engine.
    let view = if f.view.is_empty() {
        None
    } else {
        match api::view_cards(&app, &pipe, &f.view).await {
            Ok(v) => Some(v),
            Err(e) => return failed(&app, &viewer, e),
        }
    };
    let ids = api::narrow(ids, view.as_deref());
    let filtered = ids.is_some() || !f.show.is_empty();
    let mut columns = Vec::new();
    for s in &p.statuses {
        let filter = CardFilter {
            status: Some(s.name.clone()),
            assignee: (f.show == "mine").then(|| viewer.user.email.clone()),
            unassigned: f.show == "unassigned",
            sla: (f.show == "overdue").then(|| "breached".to_string()),
            ids: ids.clone(),
            // Cards come in id order, so a page starts after the last card
            // of the one before (a view orders its own way: first page only).
            after: (f.column == s.name && view.is_none())
                .then_some(f.after)
                .flatten(),
        };
        let mut rows = app
            .store
            .cards(&pipe, &filter, PER_COLUMN + 1)
            .await
            .unwrap_or_default();
        let more = rows.len() as i64 > PER_COLUMN;
        rows.truncate(PER_COLUMN as usize);
        let paged = filter.after.is_some();
        let next = (more && view.is_none())
            .then(|| rows.last().map(|r| f.href(&pipe, Some((&s.name, r.id)))))
            .flatten();
        let first = paged.then(|| f.href(&pipe, None));
        // Filtered columns are not counted in full: "50+" says there is more.
        let count = if filtered {
            format!("{}{}", rows.len(), if more { "+" } else { "" })
        } else {
            counts
                .iter()
                .find(|(n, _)| *n == s.name)
                .map(|(_, c)| *c)
                .unwrap_or(0)
                .to_string()
        };
        if let Some(order) = &view {
            api::in_view_order(&mut rows, order);
        }
        let cards: Vec<Value> = rows.iter().map(|r| tile(r, &shown, viewer.t())).collect();
        columns.push(context! { name => &s.name, count, cards, next, first });
    }
    app.pages.render(
        StatusCode::OK,
        "board.html",
        context! { t => viewer.t(), lang => viewer.lang, user => user(&viewer), csrf => &viewer.csrf,
                   pipe => context! { name => &p.name, title => &p.title }, columns, live => "/events",
                   show => &f.show, q => &f.q, view => &f.view,
                   views => p.views.iter().map(|v| context! { name => &v.name, title => &v.title }).collect::<Vec<_>>() },
    )
}

async fn card_page(
    app: &App,
    viewer: &Viewer,
    id: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let row = match api::visible_card(app, &viewer.user, id).await {
        Ok(r) => r,
        Err(e) => return failed(app, viewer, e),
    };
    let (messages, history) = match (
        app.store.messages(row.id).await,
        app.store.history(row.id).await,
    ) {
        (Ok(m), Ok(h)) => (m, h),
        _ => {
            return error_page(
                app,
                viewer,
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
        }
    };
    let card: serde_json::Value = serde_json::from_str(&row.view).unwrap_or_default();
    let wf = api::workflow(app).ok();
    let pipe = wf.as_ref().and_then(|wf| wf.pipe(&row.pipe));
    // Every field of the pipe, with its type and the card's value.
    let fields: Vec<Value> = pipe
        .map(|p| {
            p.fields
                .iter()
                .map(|f| {
                    let v = &card["fields"][&f.name];
                    let value = match v {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let (kind, choices) = match &f.ty {
                        switchboard_lang::model::FieldType::Choice(c) => ("choice", c.clone()),
                        other => (field_kind(other), Vec::new()),
                    };
                    context! { name => &f.name, value, type => kind, choices }
                })
                .collect()
        })
        .unwrap_or_default();
    // The templates the pipe's rules send: what an agent is likely to need.
    let mut templates: Vec<String> = pipe
        .map(|p| {
            p.rules
                .iter()
                .flat_map(|r| &r.actions)
                .filter_map(|a| match a {
                    switchboard_lang::model::Action::ReplyTemplate { name, .. } => {
                        Some(name.clone())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    templates.sort();
    templates.dedup();
    let statuses: Vec<String> = api::workflow(app)
        .ok()
        .and_then(|wf| {
            wf.pipe(&row.pipe)
                .map(|p| p.statuses.iter().map(|s| s.name.clone()).collect())
        })
        .unwrap_or_default();
    let window_closed = card["window_closes_at"]
        .as_str()
        .and_then(|w| chrono::DateTime::parse_from_rfc3339(w).ok())
        .is_none_or(|w| w.timestamp_millis() <= crate::now_ms());
    let card_id = id;
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let raw: serde_json::Value = m
                .raw
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok())
                .unwrap_or_default();
            let payload = &raw[m.kind.as_str()];
            // Media go through our proxy: the browser never sees Meta's
            // URL or token.
            let media = (["image", "sticker", "audio", "video", "document"].contains(&m.kind.as_str())
                && payload["id"].is_string())
            .then(|| format!("/cards/{card_id}/media/{}", url::form_urlencoded::byte_serialize(m.key.as_bytes()).collect::<String>()));
            let location = (m.kind == "location").then(|| {
                format!(
                    "https://www.openstreetmap.org/?mlat={}&mlon={}",
                    payload["latitude"], payload["longitude"]
                )
            });
            // What a reply answers: the quoted message's text, when we have it.
            let quoted = raw["context"]["id"].as_str().and_then(|q| {
                messages
                    .iter()
                    .find(|o| o.wamid.as_deref() == Some(q) || o.key == q)
                    .map(|o| o.text.clone().unwrap_or_else(|| format!("[{}]", o.kind)))
            });
            let ticks = match m.status.as_deref() {
                Some("sent") => "✓",
                Some("delivered") => "✓✓",
                Some("read") | Some("played") => "✓✓ ●",
                Some("failed") => "✗",
                _ => "",
            };
            context! { direction => &m.direction, type => &m.kind, text => &m.text, status => &m.status,
                       status_reason => &m.status_reason, at => crate::rfc3339(m.at), media, location, quoted,
                       filename => payload["filename"].as_str(), ticks,
                       known => KNOWN_TYPES.contains(&m.kind.as_str()) }
        })
        .collect();
    let history: Vec<Value> = history
        .iter()
        .map(|h| {
            context! { at => crate::rfc3339(h.at), what => &h.what, cause => cause_text(&h.cause) }
        })
        .collect();
    app.pages.render(
        status,
        "card.html",
        context! { t => viewer.t(), lang => viewer.lang, user => user(viewer), csrf => &viewer.csrf,
        card => Value::from_serialize(&card), fields, templates, messages, history, statuses, window_closed,
        indicator => indicator(&row), error, live => "/events" },
    )
}

/// A stored cause (the engine's `Cause` as JSON) in words, as the engine
/// writes it: "rule `refund` at support.flow:52", an agent's e-mail, …
fn cause_text(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    match v["by"].as_str() {
        Some("rule") => format!("rule `{}` at {}", s("name"), s("at")),
        Some("agent") => s("email"),
        Some("customer") => "the customer".into(),
        Some("timer") => s("what"),
        Some("engine") => s("reason"),
        _ => json.to_string(),
    }
}

fn field_kind(ty: &switchboard_lang::model::FieldType) -> &'static str {
    use switchboard_lang::model::FieldType;
    match ty {
        FieldType::Number => "number",
        FieldType::Bool => "bool",
        FieldType::Date => "date",
        FieldType::Choice(_) => "choice",
        FieldType::Text | FieldType::Agent => "text",
    }
}

/// `GET /cards/{id}`. Opening a card tells WhatsApp its messages were read
/// (in the background: the page does not wait for Meta).
pub(crate) async fn card(
    State(app): State<App>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    if let Ok(row) = api::visible_card(&app, &viewer.user, &id).await {
        let app = app.clone();
        tokio::spawn(async move { mark_read(&app, &row).await });
    }
    card_page(&app, &viewer, &id, StatusCode::OK, None).await
}

/// Marks a card's customer messages read at WhatsApp.
async fn mark_read(app: &App, row: &CardRow) {
    let wamid = match app.store.mark_inbound_read(row.id).await {
        Ok(Some(w)) => w,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot mark messages read");
            return;
        }
    };
    let (answer, number) = tokio::sync::oneshot::channel();
    let command = crate::Command::NumberId {
        pipe: row.pipe.clone(),
        answer,
    };
    let Some(number) = (match app.engine.send(command).await {
        Ok(()) => number.await.ok().flatten(),
        Err(_) => None,
    }) else {
        return;
    };
    if let Err(e) = app.graph.mark_read(&number, &wamid, false).await {
        tracing::warn!(error = %e, "WhatsApp did not take the read mark");
    }
    crate::bump(&app.progress);
}
/// The reply form.
#[derive(Deserialize)]
pub(crate) struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// The move form.
#[derive(Deserialize)]
pub(crate) struct MoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
}

/// Applies an agent's action from a form: back to the card, or the card
/// with the engine's reason.
async fn act_from_form(
    app: &App,
    viewer: &Viewer,
    id: &str,
    event: impl FnOnce(usize) -> Event,
) -> Response {
    let row = match api::visible_card(app, &viewer.user, id).await {
        Ok(r) => r,
        Err(e) => return failed(app, viewer, e),
    };
    match api::engine_act(app, event(api::engine_card(&row))).await {
        Ok(effects) => match api::refusal(&effects) {
            Some(refused) => {
                card_page(app, viewer, id, refused.status, Some(&refused.message)).await
            }
            None => Redirect::to(&format!("/cards/{id}")).into_response(),
        },
        Err(e) => card_page(app, viewer, id, e.status, Some(&e.message)).await,
    }
}

/// `POST /cards/{id}/reply`.
pub(crate) async fn reply(
    State(app): State<App>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<ReplyForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.csrf_refused(&app);
    }
    let text = form.text.trim().to_string();
    if text.is_empty() {
        return card_page(
            &app,
            &viewer,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&viewer.t()["reply_placeholder"]),
        )
        .await;
    }
    let agent = viewer.user.email.clone();
    act_from_form(&app, &viewer, &id, |card| Event::Reply {
        card,
        agent,
        body: ReplyBody::Text(text),
    })
    .await
}

/// `GET /cards/{id}/media/{key}`: a customer's image, audio, video or
/// document, fetched from WhatsApp with our token, for someone who may see
/// the card.
pub(crate) async fn media(
    State(app): State<App>,
    viewer: Viewer,
    Path((id, key)): Path<(String, String)>,
) -> Response {
    let row = match api::visible_card(&app, &viewer.user, &id).await {
        Ok(r) => r,
        Err(e) => return failed(&app, &viewer, e),
    };
    let messages = app.store.messages(row.id).await.unwrap_or_default();
    let Some(m) = messages.iter().find(|m| m.key == key) else {
        return error_page(
            &app,
            &viewer,
            StatusCode::NOT_FOUND,
            &viewer.t()["not_found"],
        );
    };
    let raw: serde_json::Value = m
        .raw
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let Some(media_id) = raw[m.kind.as_str()]["id"].as_str() else {
        return error_page(
            &app,
            &viewer,
            StatusCode::NOT_FOUND,
            &viewer.t()["not_found"],
        );
    };
    match app.graph.download_media(media_id).await {
        Ok((bytes, mime)) => (
            [
                ("content-type", mime),
                ("cache-control", "private, max-age=3600".to_string()),
                ("x-content-type-options", "nosniff".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, media = media_id, "media download failed");
            error_page(
                &app,
                &viewer,
                StatusCode::BAD_GATEWAY,
                &viewer.t()["media_unavailable"],
            )
        }
    }
}

/// The template form.
#[derive(Deserialize)]
pub(crate) struct TemplateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    params: String,
}

/// `POST /cards/{id}/template`: an approved template, which reaches the
/// customer even when the 24-hour window has closed.
pub(crate) async fn template(
    State(app): State<App>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<TemplateForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.csrf_refused(&app);
    }
    let name = form.template.trim().to_string();
    let language = form.language.trim().to_string();
    if name.is_empty() || language.is_empty() {
        return card_page(
            &app,
            &viewer,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&viewer.t()["template_missing"]),
        )
        .await;
    }
    let params: Vec<String> = form
        .params
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let agent = viewer.user.email.clone();
    act_from_form(&app, &viewer, &id, |card| Event::Reply {
        card,
        agent,
        body: ReplyBody::Template {
            name,
            language,
            params,
        },
    })
    .await
}

/// `POST /cards/{id}/fields`: the fields form (`field.NAME=value`); empty
/// values are left as they are.
pub(crate) async fn set_fields(
    State(app): State<App>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    if !viewer.csrf_ok(csrf) {
        return viewer.csrf_refused(&app);
    }
    let row = match api::visible_card(&app, &viewer.user, &id).await {
        Ok(r) => r,
        Err(e) => return failed(&app, &viewer, e),
    };
    let current: serde_json::Value = serde_json::from_str(&row.view).unwrap_or_default();
    let wf = api::workflow(&app).ok();
    let mut fields = std::collections::BTreeMap::new();
    for (key, value) in &form {
        let Some(name) = key.strip_prefix("field.") else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let ty = wf
            .as_ref()
            .and_then(|wf| wf.pipe(&row.pipe))
            .and_then(|p| p.field(name))
            .map(|f| field_kind(&f.ty))
            .unwrap_or("text");
        // Typed as the workflow says; the engine checks the value.
        let typed = match ty {
            "number" => value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(value.to_string())),
            "bool" => serde_json::Value::Bool(value == "true"),
            _ => serde_json::Value::String(value.to_string()),
        };
        let unchanged = match (&current["fields"][name], &typed) {
            (serde_json::Value::Number(a), serde_json::Value::Number(b)) => {
                a.as_f64() == b.as_f64()
            }
            (a, b) => a == b,
        };
        if !unchanged {
            fields.insert(name.to_string(), typed);
        }
    }
    if fields.is_empty() {
        return Redirect::to(&format!("/cards/{id}")).into_response();
    }
    let agent = viewer.user.email.clone();
    act_from_form(&app, &viewer, &id, |card| Event::Set {
        card,
        agent,
        fields,
    })
    .await
}

/// `POST /cards/{id}/move`.
pub(crate) async fn move_card(
    State(app): State<App>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<MoveForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.csrf_refused(&app);
    }
    let agent = viewer.user.email.clone();
    let status = form.status;
    act_from_form(&app, &viewer, &id, |card| Event::Move {
        card,
        agent,
        status,
    })
    .await
}

/// `GET /events`: a `change` event whenever the server stored something,
/// so open pages refresh themselves.
pub(crate) async fn events(State(app): State<App>, _viewer: Viewer) -> Response {
    live_stream(&app)
}

/// The stream of `change` events; it ends when the server stops, so a
/// graceful shutdown never waits for an open browser tab.
pub(crate) fn live_stream(app: &App) -> Response {
    let state = (app.progress.subscribe(), app.stopping.clone());
    let stream = futures_util::stream::unfold(state, |(mut progress, mut stopping)| async move {
        if *stopping.borrow() {
            return None;
        }
        let changed = tokio::select! {
            changed = progress.changed() => changed.is_ok(),
            _ = stopping.wait_for(|s| *s) => false,
        };
        // A browser drops an event without a data line.
        changed.then(|| {
            let event = SseEvent::default().event("change").data("changed");
            (Ok::<_, Infallible>(event), (progress, stopping))
        })
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A duration in minutes or hours, for people.
fn took(ms: i64) -> String {
    let m = ms / 60_000;
    if ms < 60_000 {
        format!("{}s", ms / 1000)
    } else {
        minutes(m)
    }
}

/// The value at a percentile (nearest rank) of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// A day's count in a per-day series (0 when the day is missing).
fn on_day(series: &[(i64, i64)], day: i64) -> i64 {
    series
        .iter()
        .find(|(d, _)| *d == day)
        .map(|(_, n)| *n)
        .unwrap_or(0)
}

/// Bars of cards opened and resolved per day over the last `days` days.
fn chart(
    title: &str,
    opened: &[(i64, i64)],
    resolved: &[(i64, i64)],
    today: i64,
    days: i64,
) -> Value {
    let counts: Vec<(i64, i64, i64)> = (today - days + 1..=today)
        .map(|d| (d, on_day(opened, d), on_day(resolved, d)))
        .collect();
    let max = counts
        .iter()
        .map(|(_, n, r)| *n.max(r))
        .max()
        .unwrap_or(0)
        .max(1);
    let height = |n: i64| (n * 56 / max).max(i64::from(n > 0));
    let bar = if days <= 7 { 5 } else { 2 };
    let bars: Vec<Value> = counts
        .iter()
        .enumerate()
        .map(|(i, (d, n, r))| {
            let day = chrono::DateTime::from_timestamp(d * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            context! { x => i as i64 * (2 * bar + 1), h => height(*n), n, rh => height(*r), r, day, }
        })
        .collect();
    context! { title, bars, bar, width => days * (2 * bar + 1),
    opened => counts.iter().map(|(_, n, _)| n).sum::<i64>(),
    resolved => counts.iter().map(|(_, _, r)| r).sum::<i64>() }
}

/// A day in milliseconds.
const DAY: i64 = 86_400_000;

/// `GET /dashboard`: per pipe and team, what is open, in progress, waiting
/// and late, resolved today, SLA compliance, first-reply and resolution
/// times, 7- and 30-day trends and each agent's load.
pub(crate) async fn dashboard(State(app): State<App>, viewer: Viewer) -> Response {
    if let Some(refused) = agents_refused(&app, &viewer) {
        return refused;
    }
    let wf = match api::workflow(&app) {
        Ok(w) => w,
        Err(e) => return failed(&app, &viewer, e),
    };
    let now = crate::now_ms();
    let agents = agents(&app).await;
    let t = viewer.t();
    let mut pipes = Vec::new();
    for p in wf.pipes.iter().filter(|p| api::may_see(&viewer.user, p)) {
        // Days as the pipe's people count them (its time zone's offset now).
        let offset = chrono::DateTime::from_timestamp_millis(now)
            .map(|at| {
                use chrono::{Offset, TimeZone};
                i64::from(
                    p.timezone
                        .offset_from_utc_datetime(&at.naive_utc())
                        .fix()
                        .local_minus_utc(),
                ) * 1000
            })
            .unwrap_or(0);
        let today = (now + offset).div_euclid(DAY);
        let since = (today - 29) * DAY - offset;
        let s = match app.store.pipe_stats(&p.name, since, offset).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "dashboard figures");
                return error_page(
                    &app,
                    &viewer,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database does not answer",
                );
            }
        };
        let sorted = |v: &[i64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        let first = sorted(&s.first_responses);
        let resolution = sorted(&s.resolutions);
        let at = |v: &[i64], p: f64| percentile(v, p).map(took).unwrap_or_else(|| "—".into());
        let compliance = if s.with_sla == 0 {
            "—".to_string()
        } else {
            format!("{}%", 100 * (s.with_sla - s.breached) / s.with_sla)
        };
        let members: std::collections::BTreeSet<String> = p
            .teams
            .iter()
            .flat_map(|t| t.members.iter().map(|m| m.to_lowercase()))
            .collect();
        let agents: Vec<Value> = members
            .iter()
            .map(|m| {
                let a = agents.iter().find(|a| a.email.eq_ignore_ascii_case(m));
                context! { email => m, online => a.is_some_and(|a| a.online),
                           load => a.map(|a| a.load).unwrap_or(0), capacity => a.map(|a| a.capacity).unwrap_or(0) }
            })
            .collect();
        let teams: Vec<Value> = s
            .teams
            .iter()
            .map(|w| {
                context! { team => &w.team, open => w.open, in_progress => w.in_progress,
                waiting => w.waiting, overdue => w.overdue, unassigned => w.unassigned() }
            })
            .collect();
        let total = s.total();
        let resolved_today = on_day(&s.resolved_per_day, today);
        pipes.push(context! {
            name => &p.name, title => &p.title, open => total.open, in_progress => total.in_progress,
            waiting => total.waiting, overdue => total.overdue, unassigned => total.unassigned(),
            resolved_today, compliance,
            first_median => at(&first, 50.0), first_p90 => at(&first, 90.0),
            resolution_median => at(&resolution, 50.0), resolution_p90 => at(&resolution, 90.0),
            charts => vec![
                chart(&t["last_7_days"], &s.opened_per_day, &s.resolved_per_day, today, 7),
                chart(&t["last_30_days"], &s.opened_per_day, &s.resolved_per_day, today, 30),
            ],
            teams, agents,
        });
    }
    app.pages.render(
        StatusCode::OK,
        "dashboard.html",
        context! { t => t, lang => viewer.lang, user => user(&viewer), csrf => &viewer.csrf, pipes, live => "/events" },
    )
}

/// `GET /workflows`: the workflow files (read-only), the pipes running, and
/// the diagnostics of the files on disk when they do not check.
pub(crate) async fn workflows(State(app): State<App>, viewer: Viewer) -> Response {
    if let Some(refused) = agents_refused(&app, &viewer) {
        return refused;
    }
    workflows_page(&app, &viewer, None).await
}

/// `POST /workflows/reload` (admins): the server reads the workflow files
/// again, like SIGHUP — checked first, refused with the diagnostics when
/// they have errors (422), the running workflow staying.
pub(crate) async fn reload(
    State(app): State<App>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.csrf_refused(&app);
    }
    if viewer.user.role != "admin" {
        return error_page(
            &app,
            &viewer,
            StatusCode::FORBIDDEN,
            &viewer.t()["admins_only"],
        );
    }
    let result = crate::reload(&app.engine).await;
    workflows_page(&app, &viewer, Some(result)).await
}

/// The workflows page, with what a reload just did (422 when it was
/// refused).
async fn workflows_page(
    app: &App,
    viewer: &Viewer,
    reloaded: Option<Result<String, String>>,
) -> Response {
    let dir = app.config.workflows.clone();
    let read = tokio::task::spawn_blocking(move || crate::workflows::WorkflowFiles::read(&dir))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let (files, diagnostics) = match read {
        Ok((files, _)) => (files.flows.into_iter().collect::<Vec<_>>(), None),
        Err(d) => (Vec::new(), Some(d)),
    };
    let files: Vec<Value> = files
        .iter()
        .map(|(path, text)| context! { path, text })
        .collect();
    let pipes: Vec<Value> = api::workflow(app)
        .map(|wf| {
            wf.pipes
                .iter()
                .filter(|p| api::may_see(&viewer.user, p))
                .map(|p| {
                    let statuses: Vec<&str> = p.statuses.iter().map(|s| s.name.as_str()).collect();
                    context! { name => &p.name, title => &p.title, origin => p.origin.to_string(),
                    statuses => statuses.join(" → "), rules => p.rules.len() }
                })
                .collect()
        })
        .unwrap_or_default();
    let (status, reloaded, reload_refused) = match reloaded {
        Some(Ok(done)) => (StatusCode::OK, Some(done), None),
        Some(Err(why)) => (StatusCode::UNPROCESSABLE_ENTITY, None, Some(why)),
        None => (StatusCode::OK, None, None),
    };
    app.pages.render(
        status,
        "workflows.html",
        context! { t => viewer.t(), lang => viewer.lang, user => user(viewer), csrf => &viewer.csrf,
        files, pipes, diagnostics, reloaded, reload_refused,
        may_reload => viewer.user.role == "admin" },
    )
}

/// Longest part of a flagged webhook body the alerts page shows.
const BODY_SHOWN: usize = 4_000;

/// `GET /alerts` (managers and admins): what an operator must look at —
/// the alerts (WhatsApp account errors, messages to numbers no pipe is fed
/// by, sending paused) and the webhook bodies flagged, with why and what
/// they said.
pub(crate) async fn alerts(State(app): State<App>, viewer: Viewer) -> Response {
    if let Some(refused) = agents_refused(&app, &viewer) {
        return refused;
    }
    let alerts = app.store.alerts(200).await.unwrap_or_default();
    let flagged = app.store.flagged_inbox(100).await.unwrap_or_default();
    let ids: Vec<i64> = flagged.iter().map(|(id, _)| *id).collect();
    let bodies: std::collections::HashMap<i64, (Vec<u8>, i64)> = app
        .store
        .inbox_bodies(&ids)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.id, (r.body, r.received_at)))
        .collect();
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|a| context! { at => crate::rfc3339(a.at), kind => &a.kind, detail => &a.detail })
        .collect();
    let flagged: Vec<Value> = flagged
        .iter()
        .map(|(id, note)| {
            let stored = bodies.get(id);
            // JSON laid out to be read (Meta escapes accents as \u00e9),
            // anything else as it came.
            let text = stored.map(|(body, _)| {
                serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
            });
            let cut = text
                .as_ref()
                .is_some_and(|t| t.chars().count() > BODY_SHOWN);
            let body = text.map(|t| t.chars().take(BODY_SHOWN).collect::<String>());
            let at = stored.map(|(_, at)| crate::rfc3339(*at));
            context! { id, note, body, at, cut }
        })
        .collect();
    app.pages.render(
        StatusCode::OK,
        "alerts.html",
        context! { t => viewer.t(), lang => viewer.lang, user => user(&viewer), csrf => &viewer.csrf,
        alerts, flagged },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 90.0), Some(9));
        assert_eq!(percentile(&[7], 90.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(took(42_000), "42s");
        assert_eq!(took(5 * 60_000), "5m");
        assert_eq!(took(135 * 60_000), "2h15");
    }
}

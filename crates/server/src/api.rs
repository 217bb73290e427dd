//! The REST API of api.md: pipes, cards, and an agent's actions on a card
//! (reply, move, assign, fields), with a Bearer token acting with its user's
//! rights. Someone without rights to a pipe gets 404 for it and its cards,
//! exactly as if it did not exist: nothing of another pipe leaks.

use crate::processor::Command;
use crate::{api_error, App};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use switchboard_engine::{AssignTo, EffectKind, Event, ReplyBody};
use switchboard_lang::model::{Pipe, StatusKind, Workflow};
use switchboard_store::{CardFilter, CardRow, User};
use tokio::sync::oneshot;

/// An API error: its status, a stable code and one sentence.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        api_error(self.status, self.code, &self.message)
    }
}

/// The user a request acts for.
pub(crate) struct Caller(pub(crate) User);

impl FromRequestParts<App> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            api_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "log in, or send `Authorization: Bearer <token>` (switchboard token create)",
            )
        };
        let Some(token) = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return Err(unauthorized());
        };
        let hash = crate::accounts::secret_hash(token.trim());
        match app.store.user_by_token(&hash, crate::now_ms()).await {
            Ok(Some(user)) => Ok(Caller(user)),
            Ok(None) => Err(unauthorized()),
            Err(e) => Err(internal(&e.to_string()).into_response()),
        }
    }
}

fn internal(e: &str) -> ApiError {
    tracing::error!(error = %e, "API request failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "something went wrong on our side; try again",
    )
}

/// The cards a view of the workflow shows, in its order (at most
/// [`crate::SEARCH_LIMIT`]).
pub(crate) async fn view_cards(app: &App, pipe: &str, view: &str) -> Result<Vec<i64>, ApiError> {
    let (answer, ids) = oneshot::channel();
    let command = Command::View {
        pipe: pipe.to_string(),
        view: view.to_string(),
        answer,
    };
    if app.engine.send(command).await.is_err() {
        return Err(internal("the engine has stopped"));
    }
    match ids.await {
        Ok(Some(mut ids)) => {
            ids.truncate(crate::SEARCH_LIMIT as usize);
            Ok(ids)
        }
        Ok(None) => {
            let known: Vec<String> = workflow(app)
                .ok()
                .and_then(|wf| {
                    wf.pipe(pipe)
                        .map(|p| p.views.iter().map(|v| format!("`{}`", v.name)).collect())
                })
                .unwrap_or_default();
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_view",
                if known.is_empty() {
                    format!("pipe `{pipe}` has no views")
                } else {
                    format!(
                        "pipe `{pipe}` has no view `{view}`; its views are {}",
                        known.join(", ")
                    )
                },
            ))
        }
        Err(_) => Err(internal("the engine has stopped")),
    }
}

/// The cards both a search and a view keep (either alone when only one was
/// asked for), or `None` when neither narrows the list.
pub(crate) fn narrow(found: Option<Vec<i64>>, view: Option<&[i64]>) -> Option<Vec<i64>> {
    match (found, view) {
        (Some(found), Some(shown)) => {
            let shown: std::collections::HashSet<i64> = shown.iter().copied().collect();
            Some(found.into_iter().filter(|i| shown.contains(i)).collect())
        }
        (None, Some(shown)) => Some(shown.to_vec()),
        (found, None) => found,
    }
}

/// Puts cards in a view's order.
pub(crate) fn in_view_order(rows: &mut [CardRow], order: &[i64]) {
    let place: HashMap<i64, usize> = order.iter().enumerate().map(|(n, id)| (*id, n)).collect();
    rows.sort_by_key(|r| place.get(&r.id).copied().unwrap_or(usize::MAX));
}

/// Whether a user may see a pipe: admins see all; others the pipes where
/// one of the teams names them.
pub(crate) fn may_see(user: &User, pipe: &Pipe) -> bool {
    user.role == "admin"
        || pipe.teams.iter().any(|t| {
            t.members
                .iter()
                .any(|m| m.eq_ignore_ascii_case(&user.email))
        })
}

pub(crate) fn workflow(app: &App) -> Result<Arc<Workflow>, ApiError> {
    app.workflow.borrow().clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "the engine is starting; try again in a moment",
        )
    })
}

fn no_pipe(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("there is no pipe `{name}`"),
    )
}

fn no_card(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("there is no card `{id}`"),
    )
}

fn kind_name(kind: StatusKind) -> &'static str {
    StatusKind::ALL
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(n, _)| *n)
        .unwrap_or("open")
}

/// `GET /api/pipes`.
pub(crate) async fn pipes(State(app): State<App>, Caller(user): Caller) -> Response {
    let wf = match workflow(&app) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let pipes: Vec<Value> = wf
        .pipes
        .iter()
        .filter(|p| may_see(&user, p))
        .map(|p| {
            json!({
                "name": p.name,
                "title": p.title,
                "statuses": p.statuses.iter().map(|s| json!({
                    "name": s.name, "kind": kind_name(s.kind), "initial": s.initial, "final": s.is_final,
                })).collect::<Vec<_>>(),
                "fields": p.fields.iter().map(|f| json!({
                    "name": f.name, "type": f.ty.to_string(), "shown": f.shown,
                })).collect::<Vec<_>>(),
                "views": p.views.iter().map(|v| json!({ "name": v.name, "title": v.title })).collect::<Vec<_>>(),
                "teams": p.teams.iter().map(|t| json!({ "name": t.name, "members": t.members })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "pipes": pipes })).into_response()
}

/// `GET /api/pipes/{pipe}/cards?status=&assignee=&sla=&q=&limit=&cursor=`.
pub(crate) async fn cards(
    State(app): State<App>,
    Caller(user): Caller,
    Path(pipe): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let wf = match workflow(&app) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    if !wf.pipe(&pipe).is_some_and(|p| may_see(&user, p)) {
        return no_pipe(&pipe).into_response();
    }
    let view = match q.get("view") {
        Some(name) => match view_cards(&app, &pipe, name).await {
            Ok(ids) => Some(ids),
            Err(e) => return e.into_response(),
        },
        None => None,
    };

    let limit = match q.get("limit").map(|l| l.parse::<i64>()) {
        None => 100,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        Some(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "bad_limit",
                "`limit` should be a whole number from 1 to 500",
            )
        }
    };
    let after = match q
        .get("cursor")
        .map(|c| c.strip_prefix("after_").and_then(|n| n.parse::<i64>().ok()))
    {
        None => None,
        Some(Some(n)) => Some(n),
        Some(None) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                "`cursor` should be the `next` value of a previous page",
            )
        }
    };
    let ids = match q.get("q").filter(|s| !s.trim().is_empty()) {
        Some(text) => match app.store.search(&pipe, text, crate::SEARCH_LIMIT).await {
            Ok(ids) => Some(ids),
            Err(e) => return internal(&e.to_string()).into_response(),
        },
        None => None,
    };
    // `assignee=none` lists the cards nobody has.
    let unassigned = q.get("assignee").is_some_and(|a| a == "none");
    let ids = narrow(ids, view.as_deref());
    let filter = CardFilter {
        status: q.get("status").cloned(),
        assignee: q.get("assignee").filter(|_| !unassigned).cloned(),
        sla: q.get("sla").cloned(),
        unassigned,
        ids,
        after,
    };
    match app.store.cards(&pipe, &filter, limit).await {
        Ok(rows) => {
            let next = (rows.len() as i64 == limit)
                .then(|| rows.last().map(|c| format!("after_{}", c.id)))
                .flatten();
            let mut rows = rows;
            if let Some(order) = &view {
                in_view_order(&mut rows, order);
            }
            let cards: Vec<Value> = rows.iter().map(card_view).collect();
            Json(json!({ "cards": cards, "next": next })).into_response()
        }
        Err(e) => internal(&e.to_string()).into_response(),
    }
}

fn card_view(row: &CardRow) -> Value {
    serde_json::from_str(&row.view).unwrap_or(Value::Null)
}

/// The card behind an API id (`c_support_12`), if the user may see it.
pub(crate) async fn visible_card(app: &App, user: &User, id: &str) -> Result<CardRow, ApiError> {
    let wf = workflow(app)?;
    let Some((pipe, number)) = id
        .strip_prefix("c_")
        .and_then(|rest| rest.rsplit_once('_'))
        .and_then(|(p, n)| n.parse::<i64>().ok().map(|n| (p.to_string(), n)))
    else {
        return Err(no_card(id));
    };
    if !wf.pipe(&pipe).is_some_and(|p| may_see(user, p)) {
        return Err(no_card(id));
    }
    match app.store.card_by_number(&pipe, number).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(no_card(id)),
        Err(e) => Err(internal(&e.to_string())),
    }
}

/// `GET /api/cards/{id}`: the card, its messages and its whole history.
pub(crate) async fn card(
    State(app): State<App>,
    Caller(user): Caller,
    Path(id): Path<String>,
) -> Response {
    let row = match visible_card(&app, &user, &id).await {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    full_card(&app, &row).await
}

async fn full_card(app: &App, row: &CardRow) -> Response {
    let (messages, history) = match (
        app.store.messages(row.id).await,
        app.store.history(row.id).await,
    ) {
        (Ok(m), Ok(h)) => (m, h),
        (Err(e), _) | (_, Err(e)) => return internal(&e.to_string()).into_response(),
    };
    let mut view = card_view(row);
    view["messages"] = messages
        .iter()
        .map(|m| {
            json!({
                "id": m.key, "wamid": m.wamid, "direction": m.direction, "type": m.kind,
                "text": m.text, "status": m.status, "status_reason": m.status_reason,
                "author": m.author, "at": crate::rfc3339(m.at),
                "raw": m.raw.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
            })
        })
        .collect();
    view["history"] = history
        .iter()
        .map(|h| {
            json!({
                "at": crate::rfc3339(h.at), "what": h.what,
                "cause": serde_json::from_str::<Value>(&h.cause).unwrap_or(Value::Null),
            })
        })
        .collect();
    Json(view).into_response()
}

/// Reads a JSON object body, or says in one sentence what is wrong with it.
fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            "the body should be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

fn unprocessable(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
}

fn text_of(m: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(unprocessable(&format!("`{key}` should be a string"))),
    }
}

/// Asks the engine to apply an agent's action; what it did, once stored.
pub(crate) async fn engine_act(app: &App, event: Event) -> Result<Vec<EffectKind>, ApiError> {
    let (answer, effects) = oneshot::channel();
    if app
        .engine
        .send(Command::Act { event, answer })
        .await
        .is_err()
    {
        return Err(internal("the engine has stopped"));
    }
    match effects.await {
        Ok(Ok(e)) => Ok(e),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e,
        )),
        Err(_) => Err(internal("the engine has stopped")),
    }
}

/// The engine's refusal among what it did, as an API error.
pub(crate) fn refusal(effects: &[EffectKind]) -> Option<ApiError> {
    effects.iter().find_map(|e| match e {
        // A value of the wrong type is invalid input (422); anything else
        // refused conflicts with the card's state or the flow (409).
        EffectKind::Refused { what, reason } if what.starts_with("set ") => {
            Some(unprocessable(reason))
        }
        EffectKind::Refused { reason, .. } => {
            Some(ApiError::new(StatusCode::CONFLICT, "refused", reason))
        }
        EffectKind::Failed { what } => Some(unprocessable(what)),
        _ => None,
    })
}

/// Applies an agent's action and answers with the card, or with the
/// engine's reason when it refused.
async fn act(app: &App, row: &CardRow, event: Event) -> Response {
    let effects = match engine_act(app, event).await {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    if let Some(refused) = refusal(&effects) {
        return refused.into_response();
    }
    match app.store.card(row.id).await {
        Ok(Some(fresh)) => full_card(app, &fresh).await,
        Ok(None) => internal("the card disappeared").into_response(),
        Err(e) => internal(&e.to_string()).into_response(),
    }
}

pub(crate) fn engine_card(row: &CardRow) -> usize {
    usize::try_from(row.id).unwrap_or(usize::MAX)
}

/// The card an action names and the action's JSON body.
async fn card_and_body(
    app: &App,
    user: &User,
    id: &str,
    body: &Bytes,
) -> Result<(CardRow, Map<String, Value>), ApiError> {
    let row = visible_card(app, user, id).await?;
    Ok((row, object(body)?))
}

/// `POST /api/cards/{id}/reply`: `{ "text": … }` or `{ "template", "language", "params" }`.
pub(crate) async fn reply(
    State(app): State<App>,
    Caller(user): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (row, m) = card_and_body(&app, &user, &id, &body).await?;
    let body = match (text_of(&m, "text")?, text_of(&m, "template")?) {
        (Some(t), None) if !t.trim().is_empty() => ReplyBody::Text(t),
        (None, Some(name)) => {
            let language = text_of(&m, "language")?.ok_or_else(|| {
                unprocessable("a template reply needs its `language` (for example \"pt_BR\")")
            })?;
            let params = match m.get("params") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                Some(_) => return Err(unprocessable("`params` should be a list of strings")),
            };
            ReplyBody::Template {
                name,
                language,
                params,
            }
        }
        (Some(_), Some(_)) => {
            return Err(unprocessable("send either `text` or `template`, not both"))
        }
        _ => {
            return Err(unprocessable(
                "a reply needs a non-empty `text`, or a `template` with its `language`",
            ))
        }
    };
    let card = engine_card(&row);
    Ok(act(
        &app,
        &row,
        Event::Reply {
            card,
            agent: user.email,
            body,
        },
    )
    .await)
}

/// `POST /api/cards/{id}/move`: `{ "status": … }`.
pub(crate) async fn move_card(
    State(app): State<App>,
    Caller(user): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (row, m) = card_and_body(&app, &user, &id, &body).await?;
    let status = text_of(&m, "status")?
        .ok_or_else(|| unprocessable("a move needs the `status` to move to"))?;
    let card = engine_card(&row);
    Ok(act(
        &app,
        &row,
        Event::Move {
            card,
            agent: user.email,
            status,
        },
    )
    .await)
}

/// `POST /api/cards/{id}/assign`: `{ "agent": email }` or `{ "team": name }`.
pub(crate) async fn assign(
    State(app): State<App>,
    Caller(user): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (row, m) = card_and_body(&app, &user, &id, &body).await?;
    let to = match (text_of(&m, "agent")?, text_of(&m, "team")?) {
        (Some(a), None) => AssignTo::Agent(a),
        (None, Some(t)) => AssignTo::Team(t),
        _ => {
            return Err(unprocessable(
                "an assignment needs either `agent` (an e-mail) or `team`",
            ))
        }
    };
    let card = engine_card(&row);
    Ok(act(
        &app,
        &row,
        Event::Assign {
            card,
            agent: user.email,
            to,
        },
    )
    .await)
}

/// `PATCH /api/cards/{id}/fields`: `{ "priority": "high", … }`, typed and validated.
pub(crate) async fn fields(
    State(app): State<App>,
    Caller(user): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (row, m) = card_and_body(&app, &user, &id, &body).await?;
    if m.is_empty() {
        return Err(unprocessable("name at least one field to change"));
    }
    let wf = workflow(&app)?;
    if let Some(pipe) = wf.pipe(&row.pipe) {
        if let Some(unknown) = m.keys().find(|k| pipe.field(k).is_none()) {
            let known: Vec<&str> = pipe.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(unprocessable(&format!(
                "pipe `{}` has no field `{unknown}`; its fields are {}",
                row.pipe,
                known.join(", ")
            )));
        }
    }
    let fields: BTreeMap<String, Value> = m.into_iter().collect();
    let card = engine_card(&row);
    Ok(act(
        &app,
        &row,
        Event::Set {
            card,
            agent: user.email,
            fields,
        },
    )
    .await)
}

/// `GET /api/openapi.json`.
pub(crate) async fn openapi() -> Response {
    Json(openapi_document()).into_response()
}

/// The OpenAPI document of the API.
pub fn openapi_document() -> Value {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let card = json!({ "$ref": "#/components/schemas/Card" });
    let answers = |ok: &str, codes: &[u16]| {
        let mut r = Map::new();
        r.insert(
            "200".into(),
            json!({ "description": ok, "content": { "application/json": { "schema": card } } }),
        );
        for c in codes {
            r.insert(c.to_string(), json!({ "description": "error", "content": { "application/json": { "schema": error } } }));
        }
        Value::Object(r)
    };
    let id = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" }, "example": "c_support_12" }]);
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Switchboard", "version": env!("CARGO_PKG_VERSION") },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": {
                    "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Card": { "type": "object", "properties": {
                    "id": { "type": "string" }, "number": { "type": "integer" }, "pipe": { "type": "string" },
                    "status": { "type": "string" }, "assignee": { "type": "string", "nullable": true },
                    "team": { "type": "string", "nullable": true }, "contact": { "type": "object" },
                    "fields": { "type": "object" }, "sla": { "type": "object" },
                    "last_responder": { "type": "string", "enum": ["team", "customer"], "nullable": true },
                    "window_closes_at": { "type": "string", "nullable": true },
                    "created_at": { "type": "string" }, "updated_at": { "type": "string" } } }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/pipes": { "get": { "summary": "Pipes the caller may see", "responses": { "200": { "description": "pipes" }, "401": { "description": "not logged in" } } } },
            "/api/pipes/{pipe}/cards": { "get": { "summary": "Cards of a pipe",
                "parameters": [
                    { "name": "pipe", "in": "path", "required": true, "schema": { "type": "string" } },
                    { "name": "status", "in": "query", "schema": { "type": "string" } },
                    { "name": "assignee", "in": "query", "schema": { "type": "string" } },
                    { "name": "sla", "in": "query", "schema": { "type": "string", "enum": ["ok", "warning", "breached", "none"] } },
                    { "name": "q", "in": "query", "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 500 } },
                    { "name": "cursor", "in": "query", "schema": { "type": "string" } }
                ],
                "responses": { "200": { "description": "{ cards, next }" }, "400": { "description": "bad filter" }, "404": { "description": "no such pipe" } } } },
            "/api/cards/{id}": { "get": { "summary": "A card with its messages and history", "parameters": id, "responses": answers("the card", &[401, 404]) } },
            "/api/cards/{id}/reply": { "post": { "summary": "Reply: { text } or { template, language, params }", "parameters": id, "responses": answers("the card", &[400, 401, 404, 409, 422]) } },
            "/api/cards/{id}/move": { "post": { "summary": "Move: { status }", "parameters": id, "responses": answers("the card", &[400, 401, 404, 409, 422]) } },
            "/api/cards/{id}/assign": { "post": { "summary": "Assign: { agent } or { team }", "parameters": id, "responses": answers("the card", &[400, 401, 404, 409, 422]) } },
            "/api/cards/{id}/fields": { "patch": { "summary": "Set fields: { name: value, … }", "parameters": id, "responses": answers("the card", &[400, 401, 404, 422]) } }
        }
    })
}

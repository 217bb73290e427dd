//! Logging in and out: argon2 passwords, a session cookie (HttpOnly,
//! SameSite=Lax, Secure over https) whose secret only the browser holds
//! (the database keeps its hash), a CSRF token on every form, and a limit on
//! failed attempts per e-mail.

use crate::web::i18n;
use crate::App;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard_store::User;

const SESSION: &str = "sb_session";
const LOGIN_CSRF: &str = "sb_login_csrf";
/// How long a session lasts.
const SESSION_HOURS: i64 = 12;
/// Failed log-ins allowed per e-mail within [`WINDOW`].
const ATTEMPTS: u32 = 5;
const WINDOW: Duration = Duration::from_secs(300);

/// Failed log-in attempts per e-mail.
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    fn blocked(&self, email: &str) -> bool {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(email)
            .is_some_and(|(n, since)| *n >= ATTEMPTS && since.elapsed() < WINDOW)
    }
    fn failed(&self, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(email.to_string()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
    fn succeeded(&self, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(email);
    }
}

/// A cookie's value from the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn set_cookie(app: &App, name: &str, value: &str, max_age: i64) -> String {
    let secure = if app.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// The logged-in person looking at a page.
pub(crate) struct Viewer {
    pub(crate) user: User,
    pub(crate) csrf: String,
    token_hash: String,
    pub(crate) lang: &'static str,
}

impl Viewer {
    /// The strings of their language.
    pub(crate) fn t(&self) -> &'static std::collections::BTreeMap<String, String> {
        i18n::strings(self.lang)
    }

    /// Whether a form's CSRF token is this session's.
    pub(crate) fn csrf_ok(&self, token: &str) -> bool {
        use subtle::ConstantTimeEq;
        !token.is_empty() && bool::from(token.as_bytes().ct_eq(self.csrf.as_bytes()))
    }

    /// The page refusing a form without this session's token.
    pub(crate) fn csrf_refused(&self, app: &App) -> Response {
        crate::web::pages::error_page(app, self, StatusCode::FORBIDDEN, &self.t()["form_expired"])
    }
}

impl FromRequestParts<App> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(token) = cookie(&parts.headers, SESSION) else {
            return Err(to_login());
        };
        let hash = crate::accounts::secret_hash(&token);
        match app.store.session(&hash, crate::now_ms()).await {
            Ok(Some((user, csrf))) => {
                let lang = i18n::pick(Some(&user.language), None);
                Ok(Viewer {
                    user,
                    csrf,
                    token_hash: hash,
                    lang,
                })
            }
            Ok(None) => Err(to_login()),
            Err(e) => {
                tracing::error!(error = %e, "cannot read a session");
                Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database does not answer",
                )
                    .into_response())
            }
        }
    }
}

fn login_form(
    app: &App,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
) -> Response {
    let lang = i18n::pick(
        None,
        headers.get("accept-language").and_then(|v| v.to_str().ok()),
    );
    let csrf = crate::accounts::new_secret("lc");
    let demo_users: Vec<minijinja::Value> = if app.config.demo {
        crate::web::demo::USERS
            .iter()
            .map(|u| context! { email => u.email, password => crate::web::demo::PASSWORD, what => u.what })
            .collect()
    } else {
        Vec::new()
    };
    let mut page = app.pages.render(
        status,
        "login.html",
        context! { t => i18n::strings(lang), lang, csrf, error, email, demo_users },
    );
    if let Ok(v) = set_cookie(app, LOGIN_CSRF, &csrf, 3600).parse() {
        page.headers_mut().insert("set-cookie", v);
    }
    page
}

/// `GET /login`.
pub(crate) async fn login_page(State(app): State<App>, headers: HeaderMap) -> Response {
    login_form(&app, &headers, StatusCode::OK, None, "")
}

/// The log-in form.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`.
pub(crate) async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = i18n::pick(
        None,
        headers.get("accept-language").and_then(|v| v.to_str().ok()),
    );
    let t = i18n::strings(lang);
    let expected = cookie(&headers, LOGIN_CSRF).unwrap_or_default();
    {
        use subtle::ConstantTimeEq;
        if form.csrf.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(expected.as_bytes())) {
            return login_form(
                &app,
                &headers,
                StatusCode::FORBIDDEN,
                Some(&t["form_expired"]),
                &form.email,
            );
        }
    }
    let email = form.email.trim().to_lowercase();
    if app.logins.blocked(&email) {
        tracing::warn!(email = %email, "log-in refused: too many failed attempts");
        return login_form(
            &app,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&t["login_limited"]),
            &email,
        );
    }
    let user = match app.store.user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a user");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer",
            )
                .into_response();
        }
    };
    let Some(user) = user.filter(|u| {
        u.password_hash
            .as_deref()
            .is_some_and(|h| crate::accounts::password_matches(&form.password, h))
    }) else {
        app.logins.failed(&email);
        return login_form(
            &app,
            &headers,
            StatusCode::UNAUTHORIZED,
            Some(&t["login_failed"]),
            &email,
        );
    };
    app.logins.succeeded(&email);
    let token = crate::accounts::new_secret("sbs");
    let csrf = crate::accounts::new_secret("csrf");
    let now = crate::now_ms();
    if let Err(e) = app
        .store
        .create_session(
            &crate::accounts::secret_hash(&token),
            user.id,
            &csrf,
            now + SESSION_HOURS * 3_600_000,
            now,
        )
        .await
    {
        tracing::error!(error = %e, "cannot open a session");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database does not answer",
        )
            .into_response();
    }
    let mut to_home = Redirect::to("/").into_response();
    if let Ok(v) = set_cookie(&app, SESSION, &token, SESSION_HOURS * 3600).parse() {
        to_home.headers_mut().append("set-cookie", v);
    }
    to_home
}

/// A form with only its CSRF token (log out, reload the workflows).
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// `POST /logout`.
pub(crate) async fn logout(
    State(app): State<App>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return viewer.csrf_refused(&app);
    }
    if let Err(e) = app.store.delete_session(&viewer.token_hash).await {
        tracing::error!(error = %e, "cannot close a session");
    }
    let mut to_login = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(&app, SESSION, "", 0).parse() {
        to_login.headers_mut().append("set-cookie", v);
    }
    to_login
}

//! The web UI: server-rendered pages (minijinja templates from the top-level
//! `web/` folder), a little JavaScript for live updates, and in the demo the
//! phone simulator. Templates are embedded in the binary; a debug build run
//! from the repository reads them from disk on every request, so editing
//! them needs no rebuild.

pub mod demo;
pub(crate) mod i18n;
pub(crate) mod pages;
pub(crate) mod session;

use crate::App;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;

/// The pages' routes.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/availability", post(pages::set_availability))
        .route("/language", post(pages::set_language))
        .route("/pipes/{pipe}", get(pages::board))
        .route("/dashboard", get(pages::dashboard))
        .route("/workflows", get(pages::workflows))
        .route("/alerts", get(pages::alerts))
        .route("/workflows/reload", post(pages::reload))
        .route("/cards/{id}", get(pages::card))
        .route("/cards/{id}/reply", post(pages::reply))
        .route("/cards/{id}/move", post(pages::move_card))
        .route("/cards/{id}/template", post(pages::template))
        .route("/cards/{id}/media/{key}", get(pages::media))
        .route("/cards/{id}/fields", post(pages::set_fields))
        .route("/events", get(pages::events))
        .route("/static/{file}", get(static_file))
        .route("/demo/phone", get(demo::phone).post(demo::send))
        .route("/demo/events", get(demo::events))
}

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../../web/templates/", $name)))),*]
    };
}

/// The templates, as built into the binary.
const TEMPLATES: &[(&str, &str)] = embedded!(
    "base.html",
    "login.html",
    "home.html",
    "board.html",
    "card.html",
    "phone.html",
    "error.html",
    "dashboard.html",
    "workflows.html",
    "alerts.html",
);

/// The folder templates are read from in development, when it exists.
fn disk_folder() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from("web/templates");
    (cfg!(debug_assertions) && dir.is_dir()).then_some(dir)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let disk = disk_folder();
    for (name, text) in TEMPLATES {
        let text = disk
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join(name)).ok())
            .unwrap_or_else(|| (*text).to_string());
        if let Err(e) = env.add_template_owned(*name, text) {
            tracing::error!(template = name, error = %e, "a template does not compile");
        }
    }
    env
}

/// Renders pages: built once, or on every call while developing.
pub(crate) struct Pages {
    built: Environment<'static>,
}

impl Pages {
    pub(crate) fn new() -> Pages {
        Pages {
            built: environment(),
        }
    }

    /// The page, or a plain error page if the template fails (logged).
    pub(crate) fn render(&self, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
        let fresh;
        let env = if disk_folder().is_some() {
            fresh = environment();
            &fresh
        } else {
            &self.built
        };
        match env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "a page could not be rendered");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong on our side",
                )
                    .into_response()
            }
        }
    }
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (
            include_str!("../../../../web/static/app.css"),
            "text/css; charset=utf-8",
        ),
        "app.js" => (
            include_str!("../../../../web/static/app.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let body = disk_folder()
        .and_then(|_| std::fs::read_to_string(format!("web/static/{file}")).ok())
        .unwrap_or_else(|| body.to_string());
    (
        [("content-type", kind), ("cache-control", "no-cache")],
        body,
    )
        .into_response()
}

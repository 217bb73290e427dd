//! `switchboard serve` and `switchboard migrate`: the configuration, the
//! runtime, logs and signals. The server itself is `switchboard-server`.

use std::process::ExitCode;
use switchboard_server::config::Config;

/// Reads the configuration: the environment over `switchboard.toml` if there is one.
fn config(demo: bool) -> Result<Config, String> {
    let file = std::fs::read_to_string("switchboard.toml").ok();
    Config::read(
        demo,
        |k| std::env::var(k).ok(),
        file.as_deref().map(|t| ("switchboard.toml", t)),
    )
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Structured logs on stderr; `RUST_LOG` filters, `SWITCHBOARD_LOG=json` for JSON lines.
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("SWITCHBOARD_LOG").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `switchboard serve [--demo]`.
pub fn serve(demo: bool) -> Result<ExitCode, String> {
    let config = config(demo)?;
    logs();
    runtime()?.block_on(async move {
        let running = switchboard_server::start(config).await?;
        eprintln!("Switchboard is listening on http://{}", running.addr);
        if let Some(fake) = &running.fake {
            eprintln!(
                "demo: replies go to a fake WhatsApp API at {}",
                fake.base_url()
            );
            eprintln!(
                "demo: play a customer at http://{}/demo/phone",
                running.addr
            );
            for u in running.demo_users {
                eprintln!(
                    "demo: log in as {} / {} ({}: {})",
                    u.email,
                    switchboard_server::web::demo::PASSWORD,
                    u.role,
                    u.what
                );
            }
        }
        wait_for_signals(&running).await;
        eprintln!("stopping: finishing the work in flight");
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Waits for SIGINT or SIGTERM; SIGHUP reloads the workflows.
#[cfg(unix)]
async fn wait_for_signals(running: &switchboard_server::Running) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut hup), Ok(mut term)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => match running.reload().await {
                Ok(m) => eprintln!("reloaded: {m}"),
                Err(e) => eprintln!("reload refused: {e}"),
            },
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_running: &switchboard_server::Running) {
    let _ = tokio::signal::ctrl_c().await;
}

/// The database URL of the settings (secrets are not needed to reach it).
pub fn database_url() -> Result<String, String> {
    Ok(config(true)?.database_url)
}

/// `switchboard migrate`.
pub fn migrate() -> Result<ExitCode, String> {
    let url = database_url()?;
    runtime()?.block_on(async move {
        let store = switchboard_store::Store::open(&url)
            .await
            .map_err(|e| e.to_string())?;
        store.close().await;
        let inbox = store
            .inbox_file()
            .map(|f| format!(" (webhook bodies in {f})"))
            .unwrap_or_default();
        println!(
            "the database {} is up to date{inbox}",
            switchboard_store::redact(&url)
        );
        Ok(ExitCode::SUCCESS)
    })
}

//! `switchboard user add` and `switchboard token create`.

use std::io::Read;
use std::process::ExitCode;

/// The database named by the settings (environment or `switchboard.toml`).
async fn store() -> Result<switchboard_store::Store, String> {
    let url = crate::serve::database_url()?;
    switchboard_store::Store::open(&url)
        .await
        .map_err(|e| e.to_string())
}

/// `switchboard user add EMAIL --name NAME --role ROLE [--password-stdin]`.
pub fn add_user(
    email: &str,
    name: &str,
    role: &str,
    password_stdin: bool,
) -> Result<ExitCode, String> {
    let password = if password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        Some(text.trim_end_matches(['\r', '\n']).to_string())
    } else {
        None
    };
    crate::serve::runtime()?.block_on(async {
        let store = store().await?;
        let (user, made_up) =
            switchboard_server::accounts::add_user(&store, email, name, role, password.as_deref())
                .await?;
        store.close().await;
        println!("user {} ({}) is {}", user.email, user.name, user.role);
        if let Some(p) = made_up {
            println!("password: {p}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `switchboard token create --user EMAIL --name NAME`: the token is the last word.
pub fn create_token(user: &str, name: &str) -> Result<ExitCode, String> {
    crate::serve::runtime()?.block_on(async {
        let store = store().await?;
        let token = switchboard_server::accounts::create_token(&store, user, name).await?;
        store.close().await;
        println!("API token {name} for {user} (shown once; keep it secret): {token}");
        Ok(ExitCode::SUCCESS)
    })
}

//! The server's settings: environment variables, or a `switchboard.toml`
//! naming the same keys (the environment wins). Names and defaults are fixed
//! in api.md.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `serve` needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The folder of `.flow` files.
    pub workflows: PathBuf,
    /// Used in links and cookies.
    pub public_url: String,
    /// App secrets that sign webhooks (several during a rotation).
    pub app_secrets: Vec<String>,
    /// Tokens that answer Meta's subscription handshake.
    pub verify_tokens: Vec<String>,
    /// Bearer token for the Graph API.
    pub access_token: String,
    /// Graph API base, with its version.
    pub api_base: String,
    /// Demo mode: fake Graph API, demo secrets.
    pub demo: bool,
    /// Largest webhook body accepted, in bytes.
    pub webhook_max_bytes: usize,
    /// Messages per second per business number.
    pub send_rate: u32,
    /// How long a sender holds a message it is sending before another may
    /// take it as uncertain.
    pub send_claim: Duration,
    /// How long an uncertain message waits for a status before it is sent
    /// once more.
    pub uncertain_quiet: Duration,
    /// How long the engine's lease lasts without renewal.
    pub lease: Duration,
}

/// The keys, as in api.md, plus Switchboard's own tuning keys.
const KEYS: &[&str] = &[
    "SWITCHBOARD_DATABASE_URL",
    "SWITCHBOARD_LISTEN",
    "SWITCHBOARD_WORKFLOWS",
    "SWITCHBOARD_PUBLIC_URL",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_ACCESS_TOKEN",
    "WHATSAPP_API_BASE",
    "SWITCHBOARD_WEBHOOK_MAX_BYTES",
    "SWITCHBOARD_SEND_RATE",
    "SWITCHBOARD_SEND_CLAIM_SECS",
    "SWITCHBOARD_UNCERTAIN_QUIET_SECS",
    "SWITCHBOARD_LEASE_SECS",
];

/// The secret the demo signs its simulated webhooks with.
pub const DEMO_SECRET: &str = "demo-app-secret";
/// The verify token of the demo.
pub const DEMO_VERIFY_TOKEN: &str = "demo-verify-token";

/// 3 MB (3 × 2^20 bytes): Meta's quoted cap on one webhook POST.
pub const DEFAULT_WEBHOOK_MAX_BYTES: usize = 3 * 1024 * 1024;

impl Config {
    /// Reads the settings from `lookup` (the environment) over the file's
    /// text, if any. Every mistake is one sentence naming the key.
    pub fn read(
        demo: bool,
        lookup: impl Fn(&str) -> Option<String>,
        file: Option<(&str, &str)>,
    ) -> Result<Config, String> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        if let Some((path, text)) = file {
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                format!("{path} is not valid TOML: {}", e.message())
            })?;
            for (k, v) in table {
                if !KEYS.contains(&k.as_str()) {
                    return Err(format!(
                        "{path}: unknown key `{k}`; the keys are {}",
                        KEYS.join(", ")
                    ));
                }
                let v = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    other => {
                        return Err(format!(
                            "{path}: `{k}` should be a string or a number, not {}",
                            other.type_str()
                        ))
                    }
                };
                values.insert(k, v);
            }
        }
        for k in KEYS {
            if let Some(v) = lookup(k).filter(|v| !v.is_empty()) {
                values.insert(k.to_string(), v);
            }
        }
        let get = |k: &str| values.get(k).cloned();
        let list = |k: &str| -> Vec<String> {
            get(k)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let number = |k: &str, default: u64| -> Result<u64, String> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| format!("{k} should be a whole number, not `{v}`")),
            }
        };
        let listen_text = get("SWITCHBOARD_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_text.parse().map_err(|_| {
            format!("SWITCHBOARD_LISTEN should be an address such as 127.0.0.1:8080, not `{listen_text}`")
        })?;
        let mut app_secrets = list("WHATSAPP_APP_SECRET");
        let mut verify_tokens = list("WHATSAPP_VERIFY_TOKEN");
        if demo {
            app_secrets.push(DEMO_SECRET.into());
            verify_tokens.push(DEMO_VERIFY_TOKEN.into());
        } else if app_secrets.is_empty() {
            return Err("WHATSAPP_APP_SECRET is not set: without it no webhook can be verified (set it, or run `switchboard serve --demo` to try Switchboard without a Meta account)".into());
        } else if verify_tokens.is_empty() {
            return Err("WHATSAPP_VERIFY_TOKEN is not set: Meta's subscription handshake needs it (set it, or run `switchboard serve --demo`)".into());
        }
        let send_rate = number("SWITCHBOARD_SEND_RATE", 80)?;
        if send_rate == 0 {
            return Err("SWITCHBOARD_SEND_RATE should be at least 1 message per second".into());
        }
        Ok(Config {
            database_url: get("SWITCHBOARD_DATABASE_URL")
                .unwrap_or_else(|| "sqlite://switchboard.db".into()),
            listen,
            workflows: PathBuf::from(
                get("SWITCHBOARD_WORKFLOWS").unwrap_or_else(|| "workflows".into()),
            ),
            public_url: get("SWITCHBOARD_PUBLIC_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            app_secrets,
            verify_tokens,
            access_token: get("WHATSAPP_ACCESS_TOKEN").unwrap_or_else(|| {
                if demo {
                    "demo-access-token".into()
                } else {
                    String::new()
                }
            }),
            api_base: get("WHATSAPP_API_BASE")
                .unwrap_or_else(|| "https://graph.facebook.com/v25.0".into()),
            demo,
            webhook_max_bytes: number(
                "SWITCHBOARD_WEBHOOK_MAX_BYTES",
                DEFAULT_WEBHOOK_MAX_BYTES as u64,
            )? as usize,
            send_rate: send_rate as u32,
            send_claim: Duration::from_secs(number("SWITCHBOARD_SEND_CLAIM_SECS", 60)?.max(1)),
            uncertain_quiet: Duration::from_secs(number("SWITCHBOARD_UNCERTAIN_QUIET_SECS", 60)?),
            lease: Duration::from_secs(number("SWITCHBOARD_LEASE_SECS", 10)?.max(2)),
        })
    }

    /// Settings for tests: SQLite at `database_url`, the given workflows,
    /// a free port, secret `test-secret`, verify token `test-token`.
    pub fn for_tests(database_url: &str, workflows: impl Into<PathBuf>, api_base: &str) -> Config {
        Config {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            workflows: workflows.into(),
            public_url: "http://127.0.0.1".into(),
            app_secrets: vec!["test-secret".into()],
            verify_tokens: vec!["test-token".into()],
            access_token: "test-access-token".into(),
            api_base: api_base.into(),
            demo: false,
            webhook_max_bytes: DEFAULT_WEBHOOK_MAX_BYTES,
            send_rate: 80,
            send_claim: Duration::from_secs(30),
            uncertain_quiet: Duration::from_secs(1),
            lease: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_follow_the_api_contract() {
        let c = Config::read(true, env(&[]), None).unwrap();
        assert_eq!(c.database_url, "sqlite://switchboard.db");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.api_base, "https://graph.facebook.com/v25.0");
        assert_eq!(c.webhook_max_bytes, 3 * 1024 * 1024);
    }

    #[test]
    fn a_missing_secret_outside_the_demo_is_one_sentence_with_the_way_out() {
        let e = Config::read(false, env(&[]), None).unwrap_err();
        assert!(
            e.starts_with("WHATSAPP_APP_SECRET is not set") && e.contains("--demo"),
            "{e}"
        );
    }

    #[test]
    fn the_environment_wins_over_the_file_and_lists_are_split() {
        let file = "SWITCHBOARD_LISTEN = \"0.0.0.0:9000\"\nWHATSAPP_APP_SECRET = \"a, b\"\nWHATSAPP_VERIFY_TOKEN = \"t\"\nSWITCHBOARD_SEND_RATE = 20\n";
        let c = Config::read(
            false,
            env(&[("SWITCHBOARD_LISTEN", "127.0.0.1:7000")]),
            Some(("switchboard.toml", file)),
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.app_secrets, vec!["a", "b"]);
        assert_eq!(c.send_rate, 20);
    }

    #[test]
    fn bad_values_and_unknown_keys_name_themselves() {
        let e = Config::read(true, env(&[("SWITCHBOARD_LISTEN", "here")]), None).unwrap_err();
        assert!(
            e.contains("SWITCHBOARD_LISTEN") && e.contains("`here`"),
            "{e}"
        );
        let e =
            Config::read(true, env(&[]), Some(("switchboard.toml", "LISTEN = \"x\""))).unwrap_err();
        assert!(
            e.starts_with("switchboard.toml: unknown key `LISTEN`"),
            "{e}"
        );
        let e = Config::read(true, env(&[("SWITCHBOARD_SEND_RATE", "fast")]), None).unwrap_err();
        assert!(
            e.contains("SWITCHBOARD_SEND_RATE should be a whole number"),
            "{e}"
        );
    }
}

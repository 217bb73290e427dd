//! The interface's strings, English and Brazilian Portuguese, from
//! `web/strings.toml` (all strings in one place).

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The languages, the first being the fallback.
pub const LANGUAGES: &[&str] = &["en", "pt-BR"];

type Strings = BTreeMap<String, BTreeMap<String, String>>;

fn all() -> &'static Strings {
    static STRINGS: OnceLock<Strings> = OnceLock::new();
    STRINGS.get_or_init(|| {
        toml::from_str(include_str!("../../../../web/strings.toml")).unwrap_or_else(|e| {
            tracing::error!(error = %e, "web/strings.toml does not read");
            Strings::new()
        })
    })
}

/// The strings of a language (English for one we do not have).
pub fn strings(language: &str) -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    let all = all();
    all.get(language)
        .or_else(|| all.get(LANGUAGES[0]))
        .unwrap_or(&EMPTY)
}

/// The language to use for a user's setting, or from `Accept-Language`.
pub fn pick(setting: Option<&str>, accept: Option<&str>) -> &'static str {
    let wanted = setting.map(str::to_string).or_else(|| {
        accept
            .and_then(|a| a.split(',').next())
            .map(|s| s.trim().to_string())
    });
    match wanted {
        Some(w) if w.to_lowercase().starts_with("pt") => "pt-BR",
        _ => "en",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_string() {
        let all = all();
        let en: Vec<&String> = all["en"].keys().collect();
        assert!(en.len() > 40);
        for lang in LANGUAGES {
            let keys: Vec<&String> = all[*lang].keys().collect();
            assert_eq!(keys, en, "{lang} has the same strings as en");
            assert!(
                all[*lang].values().all(|v| !v.trim().is_empty()),
                "{lang} has no empty string"
            );
        }
    }

    #[test]
    fn portuguese_speakers_get_portuguese() {
        assert_eq!(pick(None, Some("pt-BR,pt;q=0.9,en;q=0.8")), "pt-BR");
        assert_eq!(pick(Some("en"), Some("pt-BR")), "en");
        assert_eq!(pick(None, None), "en");
        assert_eq!(strings("pt-BR")["login"], "Entrar");
        assert_eq!(strings("fr")["login"], "Log in");
    }
}

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

    /// Every string the pages ask for exists: `t()["key"]` and `t["key"]`
    /// in the Rust sources, `t.key` in the templates. (A missing one would
    /// be a panic or an empty label at run time.)
    #[test]
    fn every_string_the_pages_use_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let en = &all()["en"];
        let mut used = Vec::new();
        let sources = root.join("src/web");
        for entry in std::fs::read_dir(&sources).expect("src/web") {
            let path = entry.expect("entry").path();
            if path.ends_with("i18n.rs") {
                continue; // this test's own examples
            }
            let text = std::fs::read_to_string(path).expect("source");
            for pattern in ["t()[\"", "t[\""] {
                for (at, _) in text.match_indices(pattern) {
                    let rest = &text[at + pattern.len()..];
                    if let Some(end) = rest.find('"') {
                        used.push(rest[..end].to_string());
                    }
                }
            }
        }
        let templates = root.join("../../web/templates");
        for entry in std::fs::read_dir(&templates).expect("web/templates") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("template");
            for (at, _) in text.match_indices("t.") {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let key: String = text[at + 2..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                used.push(key);
            }
        }
        assert!(used.len() > 50, "found the strings in use: {used:?}");
        let missing: Vec<&String> = used.iter().filter(|k| !en.contains_key(*k)).collect();
        assert!(missing.is_empty(), "not in web/strings.toml: {missing:?}");
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

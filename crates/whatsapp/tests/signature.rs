//! `X-Hub-Signature-256` checks and the subscription handshake.

use switchboard_whatsapp::signature::{handshake, sign, verify, SignatureError};

/// HMAC-SHA256 of `test` keyed with `secret`, checked with python3 `hmac`
/// and `openssl dgst -hmac` (whatsapp.md §3).
const TEST_VECTOR: &str = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";

/// `tests/fixtures/text_escaped.json` is a body as Meta writes it (`\u00e1`,
/// `\/`, a surrogate pair, no trailing newline). Its signature with the key
/// `app-secret-2026` was computed outside Rust, with
/// `openssl dgst -sha256 -hmac app-secret-2026 text_escaped.json`. Editing the
/// file in any way (even adding a final newline) changes it.
const ESCAPED_FIXTURE_SIGNATURE: &str =
    "sha256=3fe9bee418d2009dca49a18f79b19007b44397a54446d4ab0b5bcede43c0b37d";

fn secrets(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn escaped_fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/text_escaped.json"
    ))
    .expect("the escaped fixture is readable")
}

// Signing and verifying -----------------------------------------------------

#[test]
fn the_documented_test_vector_is_what_sign_produces() {
    assert_eq!(sign("secret", b"test"), format!("sha256={TEST_VECTOR}"));
}

#[test]
fn the_documented_test_vector_verifies() {
    let header = format!("sha256={TEST_VECTOR}");
    assert_eq!(
        verify(&secrets(&["secret"]), b"test", Some(&header)),
        Ok(())
    );
}

#[test]
fn what_sign_produces_verifies_with_the_same_secret() {
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let header = sign("s3cr3t", body);
    assert!(header.starts_with("sha256="));
    assert_eq!(header.len(), "sha256=".len() + 64);
    assert_eq!(verify(&secrets(&["s3cr3t"]), body, Some(&header)), Ok(()));
}

#[test]
fn a_body_with_escaped_non_ascii_is_verified_over_its_raw_bytes() {
    let body = escaped_fixture();
    assert!(
        body.is_ascii(),
        "the fixture must stay in Meta's escaped form"
    );
    assert!(body.windows(6).any(|w| w == br"\u00e1"));
    assert!(body.windows(2).any(|w| w == br"\/"));
    assert_eq!(
        verify(
            &secrets(&["app-secret-2026"]),
            &body,
            Some(ESCAPED_FIXTURE_SIGNATURE)
        ),
        Ok(())
    );
    assert_eq!(sign("app-secret-2026", &body), ESCAPED_FIXTURE_SIGNATURE);
}

#[test]
fn the_same_body_parsed_and_serialised_again_no_longer_verifies() {
    let body = escaped_fixture();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let reserialised = serde_json::to_vec(&value).unwrap();
    assert_ne!(reserialised, body);
    assert_eq!(
        verify(
            &secrets(&["app-secret-2026"]),
            &reserialised,
            Some(ESCAPED_FIXTURE_SIGNATURE)
        ),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn uppercase_hex_is_accepted_because_it_spells_the_same_bytes() {
    let header = format!("sha256={}", TEST_VECTOR.to_uppercase());
    assert_eq!(
        verify(&secrets(&["secret"]), b"test", Some(&header)),
        Ok(())
    );
}

#[test]
fn surrounding_whitespace_in_the_header_is_ignored() {
    let header = format!("  sha256={TEST_VECTOR}\t");
    assert_eq!(
        verify(&secrets(&["secret"]), b"test", Some(&header)),
        Ok(())
    );
}

#[test]
fn any_of_several_secrets_verifies() {
    let header = format!("sha256={TEST_VECTOR}");
    let rotating = secrets(&["old-secret", "other-app", "secret"]);
    assert_eq!(verify(&rotating, b"test", Some(&header)), Ok(()));
}

#[test]
fn no_configured_secret_matches_nothing() {
    let header = format!("sha256={TEST_VECTOR}");
    assert_eq!(
        verify(&[], b"test", Some(&header)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_missing_header_is_refused_as_missing() {
    assert_eq!(
        verify(&secrets(&["secret"]), b"test", None),
        Err(SignatureError::Missing)
    );
}

#[test]
fn a_header_without_the_sha256_prefix_is_malformed() {
    for header in [
        TEST_VECTOR.to_string(),
        format!("sha1={TEST_VECTOR}"),
        format!("SHA256={TEST_VECTOR}"),
        format!("sha256:{TEST_VECTOR}"),
        format!("sha256= {TEST_VECTOR}"),
        String::new(),
    ] {
        assert_eq!(
            verify(&secrets(&["secret"]), b"test", Some(&header)),
            Err(SignatureError::Malformed),
            "{header:?}"
        );
    }
}

#[test]
fn a_digest_that_is_not_64_hex_digits_is_malformed() {
    let short = &TEST_VECTOR[..62];
    let not_hex = format!("{}zz", &TEST_VECTOR[..62]);
    let multibyte = format!("{}é", &TEST_VECTOR[..62]);
    for digits in ["", short, &format!("{TEST_VECTOR}00"), &not_hex, &multibyte] {
        let header = format!("sha256={digits}");
        assert_eq!(
            verify(&secrets(&["secret"]), b"test", Some(&header)),
            Err(SignatureError::Malformed),
            "{header:?}"
        );
    }
}

#[test]
fn a_changed_body_or_a_wrong_secret_is_a_mismatch() {
    let header = format!("sha256={TEST_VECTOR}");
    assert_eq!(
        verify(&secrets(&["secret"]), b"tesT", Some(&header)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&secrets(&["Secret"]), b"test", Some(&header)),
        Err(SignatureError::Mismatch)
    );
    let zeros = format!("sha256={}", "0".repeat(64));
    assert_eq!(
        verify(&secrets(&["secret"]), b"test", Some(&zeros)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn refusals_read_as_sentences_that_say_what_is_wrong() {
    assert!(SignatureError::Missing
        .to_string()
        .contains("no X-Hub-Signature-256 header"));
    assert!(SignatureError::Malformed
        .to_string()
        .contains("64 hexadecimal digits"));
    assert!(SignatureError::Mismatch
        .to_string()
        .contains("WHATSAPP_APP_SECRET"));
}

// Handshake -------------------------------------------------------------------

fn tokens(list: &[&str]) -> Vec<String> {
    secrets(list)
}

#[test]
fn a_subscribe_with_the_right_token_echoes_the_challenge_unchanged() {
    assert_eq!(
        handshake(
            Some("subscribe"),
            Some("verify-me"),
            Some("1158201444"),
            &tokens(&["verify-me"])
        ),
        Some("1158201444".to_string())
    );
    assert_eq!(
        handshake(
            Some("subscribe"),
            Some("verify-me"),
            Some(" odd <challenge> é "),
            &tokens(&["verify-me"])
        ),
        Some(" odd <challenge> é ".to_string())
    );
}

#[test]
fn any_of_several_tokens_is_accepted_during_rotation() {
    let configured = tokens(&["old-token", "new-token"]);
    for token in ["old-token", "new-token"] {
        assert_eq!(
            handshake(Some("subscribe"), Some(token), Some("42"), &configured),
            Some("42".to_string()),
            "{token}"
        );
    }
}

#[test]
fn a_wrong_token_gets_nothing() {
    let configured = tokens(&["verify-me"]);
    for token in ["verify-mE", "verify-me ", "verify", ""] {
        assert_eq!(
            handshake(Some("subscribe"), Some(token), Some("42"), &configured),
            None,
            "{token:?}"
        );
    }
}

#[test]
fn a_mode_other_than_subscribe_gets_nothing() {
    let configured = tokens(&["verify-me"]);
    for mode in [None, Some("unsubscribe"), Some("Subscribe"), Some("")] {
        assert_eq!(
            handshake(mode, Some("verify-me"), Some("42"), &configured),
            None,
            "{mode:?}"
        );
    }
}

#[test]
fn a_missing_token_or_challenge_gets_nothing() {
    let configured = tokens(&["verify-me"]);
    assert_eq!(
        handshake(Some("subscribe"), None, Some("42"), &configured),
        None
    );
    assert_eq!(
        handshake(Some("subscribe"), Some("verify-me"), None, &configured),
        None
    );
}

#[test]
fn an_empty_configured_token_never_matches() {
    assert_eq!(
        handshake(Some("subscribe"), Some(""), Some("42"), &tokens(&[""])),
        None
    );
    assert_eq!(
        handshake(Some("subscribe"), Some("x"), Some("42"), &tokens(&[])),
        None
    );
}

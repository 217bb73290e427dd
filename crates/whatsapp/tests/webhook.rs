//! Webhook parsing: one fixture per payload kind in `tests/fixtures/`, shaped
//! as Meta sends it, plus bodies that are broken on purpose.

use serde_json::{json, Value};
use switchboard_whatsapp::webhook::{
    parse, status_body, text_message_body, Context, InboundMessage, Metadata, Notification,
    ParseError, StatusUpdate, Update, WaError,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("the fixtures folder is readable")
        .map(|entry| entry.expect("a readable folder entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| (name.clone(), fixture(&name)))
        .collect()
}

fn parsed(name: &str) -> Notification {
    parse(&fixture(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// The only update of a fixture, which must be a message.
fn message(name: &str) -> InboundMessage {
    match parsed(name).updates.as_slice() {
        [Update::Message(message)] => message.clone(),
        other => panic!("{name}: expected one message, got {other:#?}"),
    }
}

/// The only update of a fixture, which must be a status.
fn status(name: &str) -> StatusUpdate {
    match parsed(name).updates.as_slice() {
        [Update::Status(status)] => status.clone(),
        other => panic!("{name}: expected one status, got {other:#?}"),
    }
}

fn business_number() -> Metadata {
    Metadata {
        phone_number_id: "106000000000042".into(),
        display_phone_number: "551140009999".into(),
    }
}

/// The `note` of an `Update::Other` made from an unreadable item.
fn note(update: &Update) -> &str {
    match update {
        Update::Other { raw, .. } => raw["note"].as_str().unwrap_or(""),
        _ => "",
    }
}

// Messages ------------------------------------------------------------------

#[test]
fn a_text_message_carries_its_body_its_sender_and_the_business_number() {
    let message = message("text.json");
    assert_eq!(message.metadata, business_number());
    assert_eq!(
        message.id,
        "wamid.HBgNNTUxMTk5OTk5MDAwMRUCABIYFjNFQjBDMEE2QzY0QzU0RjQ5RUQyAA=="
    );
    assert_eq!(message.from.as_deref(), Some("5511999990001"));
    assert_eq!(message.from_user_id.as_deref(), Some("BR.4417029988"));
    assert_eq!(message.name.as_deref(), Some("Ana Lima"));
    assert_eq!(message.username, None);
    assert_eq!(message.timestamp, 1_790_000_000);
    assert_eq!(message.kind, "text");
    assert_eq!(message.text.as_deref(), Some("Oi, preciso de ajuda"));
    assert_eq!(message.context, None);
    assert_eq!(message.referral, None);
    assert!(message.errors.is_empty());
}

#[test]
fn the_raw_message_is_the_object_exactly_as_received() {
    let body: Value = serde_json::from_slice(&fixture("text.json")).unwrap();
    let message = message("text.json");
    assert_eq!(
        message.raw,
        body["entry"][0]["changes"][0]["value"]["messages"][0]
    );
}

#[test]
fn escaped_non_ascii_and_slashes_are_read_as_the_characters_they_stand_for() {
    let message = message("text_escaped.json");
    assert_eq!(message.name.as_deref(), Some("José Araújo"));
    assert_eq!(
        message.text.as_deref(),
        Some("Olá! O pedido não chegou, vejam https://loja.example/pedido/7731 🙁")
    );
}

#[test]
fn an_image_reads_as_its_caption() {
    let message = message("image.json");
    assert_eq!(message.kind, "image");
    assert_eq!(message.text.as_deref(), Some("A caixa chegou amassada"));
    assert_eq!(message.raw["image"]["id"], "1003383421387256");
}

#[test]
fn a_voice_note_is_an_audio_message_with_no_text() {
    let message = message("audio_voice.json");
    assert_eq!(message.kind, "audio");
    assert_eq!(message.text, None);
    assert_eq!(message.raw["audio"]["voice"], true);
}

#[test]
fn a_video_without_a_caption_has_no_text() {
    let message = message("video.json");
    assert_eq!(message.kind, "video");
    assert_eq!(message.text, None);
}

#[test]
fn a_document_reads_as_its_caption_and_keeps_its_filename_in_raw() {
    let message = message("document.json");
    assert_eq!(message.kind, "document");
    assert_eq!(message.text.as_deref(), Some("Segue a nota fiscal"));
    assert_eq!(message.raw["document"]["filename"], "nf-7731.pdf");
}

#[test]
fn a_sticker_has_no_text() {
    let message = message("sticker.json");
    assert_eq!(message.kind, "sticker");
    assert_eq!(message.text, None);
}

#[test]
fn a_named_place_reads_as_its_name_and_address() {
    let message = message("location.json");
    assert_eq!(message.kind, "location");
    assert_eq!(
        message.text.as_deref(),
        Some("MASP, Av. Paulista, 1578 - Bela Vista, São Paulo")
    );
}

#[test]
fn a_dropped_pin_reads_as_its_coordinates() {
    let message = message("location_pin.json");
    assert_eq!(message.text.as_deref(), Some("-23.5505,-46.6333"));
}

#[test]
fn a_shared_contact_card_reads_as_its_names_and_does_not_change_the_sender() {
    let message = message("contacts.json");
    assert_eq!(message.kind, "contacts");
    assert_eq!(message.text.as_deref(), Some("Bruno Costa"));
    assert_eq!(message.from.as_deref(), Some("5511999990001"));
    assert_eq!(message.name.as_deref(), Some("Ana Lima"));
}

#[test]
fn a_reply_button_reads_as_its_title_and_quotes_our_message() {
    let message = message("interactive_button_reply.json");
    assert_eq!(message.kind, "interactive");
    assert_eq!(message.text.as_deref(), Some("Sim"));
    assert_eq!(
        message.raw["interactive"]["button_reply"]["id"],
        "solved_yes"
    );
    let context = message.context.unwrap();
    assert_eq!(context.from.as_deref(), Some("551140009999"));
}

#[test]
fn a_list_reply_reads_as_the_row_title() {
    let message = message("interactive_list_reply.json");
    assert_eq!(message.text.as_deref(), Some("Cobrança"));
    assert_eq!(message.raw["interactive"]["list_reply"]["id"], "billing");
}

#[test]
fn a_flow_reply_reads_as_its_body_and_keeps_the_response_json_string_raw() {
    let message = message("interactive_nfm_reply.json");
    assert_eq!(message.name.as_deref(), Some("Carla Dias"));
    assert_eq!(message.text.as_deref(), Some("Sent"));
    let response = message.raw["interactive"]["nfm_reply"]["response_json"]
        .as_str()
        .unwrap();
    let response: Value = serde_json::from_str(response).unwrap();
    assert_eq!(response["flow_token"], "card-881");
}

#[test]
fn a_template_quick_reply_reads_as_the_button_text() {
    let message = message("button.json");
    assert_eq!(message.kind, "button");
    assert_eq!(message.text.as_deref(), Some("Muito satisfeito"));
    assert_eq!(message.raw["button"]["payload"], "csat_5");
}

#[test]
fn a_reaction_reads_as_its_emoji() {
    let message = message("reaction.json");
    assert_eq!(message.kind, "reaction");
    assert_eq!(message.text.as_deref(), Some("👍"));
    assert_eq!(
        message.raw["reaction"]["message_id"],
        "wamid.HBgNNTUxMTQwMDA5OTk5FQIAERgSQkE3RjM0QjY0OUJDMzQ0OEIyAA=="
    );
}

#[test]
fn a_removed_reaction_has_no_text() {
    let message = message("reaction_removed.json");
    assert_eq!(message.kind, "reaction");
    assert_eq!(message.text, None);
}

#[test]
fn an_order_reads_as_its_note_and_keeps_fractional_prices_in_raw() {
    let message = message("order.json");
    assert_eq!(message.kind, "order");
    assert_eq!(message.text.as_deref(), Some("Pode entregar amanhã?"));
    assert_eq!(message.raw["order"]["product_items"][0]["item_price"], 59.9);
}

#[test]
fn a_system_message_has_no_contact_and_reads_as_its_notice() {
    let message = message("system.json");
    assert_eq!(message.kind, "system");
    assert_eq!(message.name, None);
    assert_eq!(
        message.text.as_deref(),
        Some("User A changed from 5511999990001 to 5511977770001")
    );
    assert_eq!(message.raw["system"]["type"], "user_changed_number");
}

#[test]
fn an_unsupported_message_carries_its_errors_and_no_text() {
    let message = message("unsupported.json");
    assert_eq!(message.kind, "unsupported");
    assert_eq!(message.text, None);
    assert_eq!(
        message.errors,
        vec![WaError {
            code: 131051,
            title: "Message type unknown".into(),
            message: "Message type unknown".into(),
            details: Some("Message type is currently not supported.".into()),
        }]
    );
}

#[test]
fn a_revoke_has_no_text_and_names_the_original_message_in_raw() {
    let message = message("revoke.json");
    assert_eq!(message.kind, "revoke");
    assert_eq!(message.text, None);
    assert_eq!(
        message.raw["revoke"]["original_message_id"],
        "wamid.HBgNNTUxMTk5OTk5MDAwMRUCABIYFjNFQjBDMEE2QzY0QzU0RjQ5RUQyAA=="
    );
}

#[test]
fn an_edit_reads_as_the_new_text() {
    let message = message("edit.json");
    assert_eq!(message.kind, "edit");
    assert_eq!(
        message.text.as_deref(),
        Some("Oi, preciso de ajuda com o pedido 7731")
    );
}

#[test]
fn an_unknown_type_is_kept_verbatim_with_its_raw_json() {
    let body = fixture("unknown_type.json");
    let message = message("unknown_type.json");
    assert_eq!(message.kind, "poll");
    assert_eq!(message.text, None);
    assert_eq!(message.name.as_deref(), Some("Ana Lima"));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        message.raw,
        body["entry"][0]["changes"][0]["value"]["messages"][0]
    );
}

#[test]
fn an_unknown_type_with_a_body_reads_as_that_body() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{
        "field": "messages",
        "value": {"messages": [{
            "id": "wamid.X", "timestamp": "1", "type": "note", "note": {"body": "x"}
        }]}
    }]}]});
    let Update::Message(message) = &parse(body.to_string().as_bytes()).unwrap().updates[0] else {
        panic!("not a message");
    };
    assert_eq!(message.kind, "note");
    assert_eq!(message.text.as_deref(), Some("x"));
}

#[test]
fn a_reply_carries_the_quoted_message_and_its_author() {
    let message = message("context_reply.json");
    assert_eq!(
        message.context,
        Some(Context {
            id: Some("wamid.HBgNNTUxMTQwMDA5OTk5FQIAERgSQkE3RjM0QjY0OUJDMzQ0OEIzAA==".into()),
            from: Some("551140009999".into()),
            forwarded: false,
            frequently_forwarded: false,
        })
    );
}

#[test]
fn a_forwarded_message_is_marked_forwarded() {
    let message = message("forwarded.json");
    assert_eq!(
        message.context,
        Some(Context {
            id: None,
            from: None,
            forwarded: true,
            frequently_forwarded: true,
        })
    );
}

#[test]
fn an_ad_referral_is_kept_on_the_message() {
    let message = message("referral.json");
    let referral = message.referral.unwrap();
    assert_eq!(referral["source_type"], "ad");
    assert_eq!(referral["headline"], "Frete grátis esta semana");
    assert!(referral["ctwa_clid"].is_string());
}

// Identity ------------------------------------------------------------------

#[test]
fn a_username_user_has_no_phone_but_a_bsuid_a_name_and_a_username() {
    let message = message("username_user.json");
    assert_eq!(message.from, None);
    assert_eq!(message.from_user_id.as_deref(), Some("BR.4417030356"));
    assert_eq!(message.name.as_deref(), Some("Fabio"));
    assert_eq!(message.username.as_deref(), Some("fabio.tec"));
}

#[test]
fn names_are_joined_on_wa_id_or_user_id_never_by_position() {
    let updates = parsed("contacts_not_aligned.json").updates;
    let names: Vec<(Option<&str>, Option<&str>)> = updates
        .iter()
        .map(|update| match update {
            Update::Message(m) => (m.name.as_deref(), m.username.as_deref()),
            other => panic!("not a message: {other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (Some("Ana Lima"), None),
            (Some("Bruno Costa"), None),
            (Some("Gil"), Some("gil.m")),
            (None, None),
        ]
    );
}

// Statuses ------------------------------------------------------------------

#[test]
fn sent_delivered_read_and_played_statuses_are_read_verbatim() {
    for (name, expected, timestamp) in [
        ("status_sent.json", "sent", 1_790_002_000),
        ("status_delivered.json", "delivered", 1_790_002_005),
        ("status_read.json", "read", 1_790_002_060),
        ("status_played.json", "played", 1_790_002_090),
    ] {
        let status = status(name);
        assert_eq!(status.status, expected, "{name}");
        assert_eq!(status.timestamp, timestamp, "{name}");
        assert_eq!(status.metadata, business_number(), "{name}");
        assert_eq!(
            status.id, "wamid.HBgNNTUxMTk5OTk5MDAwMRUCABEYEjRFQjY3MUZBN0M4RUY5MzJGNQA=",
            "{name}"
        );
        assert_eq!(status.recipient_id.as_deref(), Some("5511999990001"));
        assert_eq!(status.recipient_user_id.as_deref(), Some("BR.4417029988"));
        assert!(status.errors.is_empty());
    }
}

#[test]
fn a_status_echoes_the_callback_data_we_sent_and_keeps_pricing_raw() {
    let status = status("status_delivered.json");
    assert_eq!(status.callback_data.as_deref(), Some("outbox-9f3c"));
    assert_eq!(status.raw["pricing"]["category"], "service");
}

#[test]
fn a_failed_status_carries_its_error_and_has_no_bsuid_or_contact() {
    let status = status("status_failed.json");
    assert_eq!(status.status, "failed");
    assert_eq!(status.recipient_user_id, None);
    assert_eq!(status.callback_data.as_deref(), Some("outbox-a071"));
    assert_eq!(
        status.errors,
        vec![WaError {
            code: 131047,
            title: "Re-engagement message".into(),
            message: "Re-engagement message".into(),
            details: Some("More than 24 hours have passed since the customer last replied".into()),
        }]
    );
}

// Errors and other fields ---------------------------------------------------

#[test]
fn value_errors_become_account_level_errors_for_the_business_number() {
    let updates = parsed("value_errors.json").updates;
    assert_eq!(
        updates,
        vec![Update::Error {
            metadata: business_number(),
            error: WaError {
                code: 131042,
                title: "Business eligibility payment issue".into(),
                message: "Business eligibility payment issue".into(),
                details: Some("There was an error related to your payment method.".into()),
            },
        }]
    );
}

#[test]
fn an_error_in_the_older_shape_keeps_its_top_level_details() {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [{
        "field": "messages",
        "value": {"errors": [{
            "code": "131000", "title": "Something went wrong", "details": "try later"
        }]}
    }]}]});
    let updates = parse(body.to_string().as_bytes()).unwrap().updates;
    assert_eq!(
        updates,
        vec![Update::Error {
            metadata: Metadata::default(),
            error: WaError {
                code: 131000,
                title: "Something went wrong".into(),
                message: String::new(),
                details: Some("try later".into()),
            },
        }]
    );
}

#[test]
fn other_fields_are_kept_raw_under_their_field_name() {
    for (name, field) in [
        ("user_preferences.json", "user_preferences"),
        ("account_update.json", "account_update"),
        ("user_id_update.json", "user_id_update"),
    ] {
        let body: Value = serde_json::from_slice(&fixture(name)).unwrap();
        assert_eq!(
            parsed(name).updates,
            vec![Update::Other {
                field: field.into(),
                raw: body["entry"][0]["changes"][0]["value"].clone(),
            }],
            "{name}"
        );
    }
}

// Batches -------------------------------------------------------------------

#[test]
fn several_entries_and_changes_keep_their_order_and_their_own_business_number() {
    let updates = parsed("several_entries.json").updates;
    let summary: Vec<(String, String)> = updates
        .iter()
        .map(|update| match update {
            Update::Message(m) => (m.metadata.phone_number_id.clone(), m.id.clone()),
            Update::Status(s) => (s.metadata.phone_number_id.clone(), s.id.clone()),
            Update::Other { field, .. } => (String::new(), field.clone()),
            Update::Error { .. } => panic!("no errors in this fixture"),
        })
        .collect();
    let expected = [
        ("106000000000042", "wamid.A1"),
        ("106000000000077", "wamid.A2"),
        ("106000000000077", "wamid.OURS1"),
        ("106000000000099", "wamid.OURS2"),
        ("", "account_update"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(summary, expected);
}

#[test]
fn timestamps_may_be_strings_or_numbers() {
    let updates = parsed("timestamp_number.json").updates;
    let [Update::Message(message), Update::Status(status)] = updates.as_slice() else {
        panic!("expected a message and a status: {updates:#?}");
    };
    assert_eq!(message.timestamp, 1_790_008_000);
    assert_eq!(status.timestamp, 1_790_008_001);
    assert_eq!(message.text.as_deref(), Some("número"));
}

// Tolerance -----------------------------------------------------------------

#[test]
fn an_unreadable_item_is_kept_raw_with_a_note_and_its_neighbours_still_parse() {
    let updates = parsed("malformed_items.json").updates;
    let ids: Vec<&str> = updates
        .iter()
        .filter_map(|update| match update {
            Update::Message(m) => Some(m.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["wamid.D1", "wamid.D5"]);

    let others: Vec<(&str, &str)> = updates
        .iter()
        .filter_map(|update| match update {
            Update::Other { field, .. } => Some((field.as_str(), note(update))),
            _ => None,
        })
        .collect();
    assert_eq!(
        others,
        [
            (
                "messages",
                "entry[0].changes[0].value.messages[1] has no `id` (wamid) string; kept raw"
            ),
            (
                "messages",
                "entry[0].changes[0].value.messages[2] is not an object; kept raw"
            ),
            (
                "messages",
                "entry[0].changes[0].value.messages[3] has no `timestamp` in Unix seconds; kept raw"
            ),
            (
                "messages",
                "entry[0].changes[0].value.statuses[0] has no `id` (wamid) string; kept raw"
            ),
            (
                "messages",
                "entry[0].changes[1].value.messages is not a list; kept raw"
            ),
            ("", "entry[0].changes[2] has no `field` string; kept raw"),
            (
                "messages",
                "entry[0].changes[3].value has no messages, statuses or errors; kept raw"
            ),
        ]
    );
}

#[test]
fn an_unreadable_item_keeps_the_item_exactly_as_received() {
    let updates = parsed("malformed_items.json").updates;
    let kept: Vec<&Value> = updates
        .iter()
        .filter_map(|update| match update {
            Update::Other { raw, .. } => Some(&raw["item"]),
            _ => None,
        })
        .collect();
    assert_eq!(kept[1], &json!("not a message"));
    assert_eq!(kept[4], &json!({"id": "wamid.D6"}));
    assert_eq!(kept[6]["message_echoes"][0]["id"], "wamid.D7");
}

#[test]
fn an_entry_list_that_is_not_a_list_is_kept_raw() {
    let updates = parse(br#"{"object":"whatsapp_business_account","entry":{"id":"1"}}"#)
        .unwrap()
        .updates;
    assert_eq!(updates.len(), 1);
    assert_eq!(note(&updates[0]), "entry is not a list; kept raw");
}

#[test]
fn a_body_without_entries_has_no_updates() {
    assert_eq!(
        parse(br#"{"object":"whatsapp_business_account"}"#).unwrap(),
        Notification { updates: vec![] }
    );
    assert_eq!(parse(b"{}").unwrap().updates, vec![]);
}

#[test]
fn a_body_that_is_not_json_is_refused_with_where_it_broke() {
    let error = parse(b"{\"object\": \"whatsapp_business_account\", \"entry\": [").unwrap_err();
    assert!(matches!(error, ParseError::NotJson { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("the webhook body is not JSON: "), "{text}");
    assert!(text.contains("line 1 column"), "{text}");
    assert!(matches!(parse(b""), Err(ParseError::NotJson { .. })));
    assert!(matches!(
        parse(&[0xff, 0xfe]),
        Err(ParseError::NotJson { .. })
    ));
}

#[test]
fn a_body_that_is_json_but_not_an_object_is_refused() {
    for (body, found) in [
        (&b"[]"[..], "array"),
        (b"\"hi\"", "string"),
        (b"42", "number"),
        (b"true", "boolean"),
        (b"null", "null"),
    ] {
        assert_eq!(parse(body), Err(ParseError::NotAnObject { found }));
    }
}

#[test]
fn a_notification_for_another_product_is_refused() {
    let error = parse(br#"{"object":"page","entry":[]}"#).unwrap_err();
    assert_eq!(
        error,
        ParseError::NotWhatsApp {
            object: "\"page\"".into()
        }
    );
    assert!(error.to_string().contains("\"page\""));
}

// Builders ------------------------------------------------------------------

#[test]
fn a_built_text_message_parses_back_to_what_was_put_in() {
    let meta = business_number();
    let body = text_message_body(
        &meta,
        "5511999990001",
        "José",
        "wamid.T1",
        1_790_000_000,
        "Olá, vejam https://loja.example/p/1 🙂",
    );
    let message = match parse(body.as_bytes()).unwrap().updates.as_slice() {
        [Update::Message(message)] => message.clone(),
        other => panic!("{other:#?}"),
    };
    assert_eq!(message.metadata, meta);
    assert_eq!(message.from.as_deref(), Some("5511999990001"));
    assert_eq!(message.name.as_deref(), Some("José"));
    assert_eq!(message.id, "wamid.T1");
    assert_eq!(message.timestamp, 1_790_000_000);
    assert_eq!(message.kind, "text");
    assert_eq!(
        message.text.as_deref(),
        Some("Olá, vejam https://loja.example/p/1 🙂")
    );
    // Timestamps travel as strings, like Meta's.
    assert_eq!(message.raw["timestamp"], "1790000000");
}

#[test]
fn built_bodies_are_escaped_the_way_meta_escapes_them() {
    let body = text_message_body(
        &business_number(),
        "1",
        "José",
        "wamid.T2",
        1,
        "a/b 🙂\n\"q\"",
    );
    assert!(body.is_ascii(), "{body}");
    assert!(body.contains(r#""name":"Jos\u00e9""#), "{body}");
    assert!(
        body.contains(r#""body":"a\/b \ud83d\ude42\n\"q\"""#),
        "{body}"
    );
    assert!(!body.contains("\": "), "compact, like Meta's: {body}");
}

fn only_status(body: &str) -> StatusUpdate {
    match parse(body.as_bytes())
        .expect("a built body parses")
        .updates
        .as_slice()
    {
        [Update::Status(status)] => status.clone(),
        other => panic!("expected one status, got {other:#?}"),
    }
}

#[test]
fn a_built_status_parses_back_to_what_was_put_in() {
    let meta = business_number();
    let with = only_status(&status_body(
        &meta,
        "wamid.S1",
        "read",
        1_790_000_500,
        "5511999990001",
        Some("outbox-1"),
    ));
    assert_eq!(with.metadata, meta);
    assert_eq!(with.id, "wamid.S1");
    assert_eq!(with.status, "read");
    assert_eq!(with.timestamp, 1_790_000_500);
    assert_eq!(with.recipient_id.as_deref(), Some("5511999990001"));
    assert_eq!(with.callback_data.as_deref(), Some("outbox-1"));

    let without = only_status(&status_body(&meta, "wamid.S2", "failed", 1, "1", None));
    assert_eq!(without.status, "failed");
    assert_eq!(without.callback_data, None);
    assert!(without.raw.get("biz_opaque_callback_data").is_none());
}

// Never panic -----------------------------------------------------------------

#[test]
fn every_fixture_parses() {
    for (name, body) in all_fixtures() {
        let notification = parse(&body).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(!notification.updates.is_empty(), "{name} has no updates");
    }
}

#[test]
fn truncated_fixtures_never_panic() {
    for (_, body) in all_fixtures() {
        for end in 0..body.len() {
            let _ = parse(&body[..end]);
        }
    }
}

/// A small deterministic generator (xorshift), so failures can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

#[test]
fn fixtures_with_mutated_bytes_never_panic() {
    const NOISE: &[u8] = b"{}[]\",:0-9.eE\\u\xff\x00 tfn";
    let mut dice = Dice(0x5eed_cafe_f00d_beef);
    for (_, body) in all_fixtures() {
        for _ in 0..300 {
            let mut mutated = body.clone();
            for _ in 0..=dice.roll(4) {
                let at = dice.roll(mutated.len());
                match dice.roll(3) {
                    0 => mutated[at] = NOISE[dice.roll(NOISE.len())],
                    1 => {
                        mutated.remove(at);
                    }
                    _ => mutated.insert(at, NOISE[dice.roll(NOISE.len())]),
                }
            }
            let _ = parse(&mutated);
        }
    }
}

/// Values that are wrong almost anywhere they appear.
fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("99999999999999999999999"),
        json!("wamid.x"),
        json!([]),
        json!([null, 1, "x", {}]),
        json!({}),
        json!({"type": "text", "text": {"body": 1}}),
    ]
}

/// Every node of `value`, by JSON pointer.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

#[test]
fn any_node_of_any_fixture_replaced_by_an_odd_value_never_panics() {
    for (name, body) in all_fixtures() {
        let original: Value = serde_json::from_slice(&body).unwrap();
        let mut nodes = Vec::new();
        pointers(&original, String::new(), &mut nodes);
        for node in nodes {
            for odd in odd_values() {
                let mut changed = original.clone();
                if node.is_empty() {
                    changed = odd;
                } else {
                    *changed.pointer_mut(&node).unwrap() = odd;
                }
                let bytes = changed.to_string().into_bytes();
                // A body that is still an object always parses.
                let result = parse(&bytes);
                if changed.is_object() && changed.get("object") == original.get("object") {
                    assert!(result.is_ok(), "{name} with {node} changed: {result:?}");
                }
            }
        }
    }
}

/// A random JSON value built from the words webhooks use.
fn arbitrary(dice: &mut Dice, depth: usize) -> Value {
    const KEYS: &[&str] = &[
        "object",
        "entry",
        "changes",
        "field",
        "value",
        "metadata",
        "contacts",
        "messages",
        "statuses",
        "errors",
        "id",
        "from",
        "from_user_id",
        "wa_id",
        "user_id",
        "profile",
        "name",
        "timestamp",
        "type",
        "text",
        "body",
        "interactive",
        "button_reply",
        "title",
        "location",
        "latitude",
        "longitude",
        "edit",
        "message",
        "context",
        "code",
        "error_data",
        "details",
        "reaction",
        "emoji",
        "contacts",
        "system",
        "referral",
    ];
    const WORDS: &[&str] = &[
        "whatsapp_business_account",
        "messages",
        "text",
        "edit",
        "interactive",
        "location",
        "contacts",
        "1790000000",
        "",
    ];
    let leaf = depth == 0 || dice.roll(3) == 0;
    match if leaf { dice.roll(5) } else { 5 + dice.roll(2) } {
        0 => Value::Null,
        1 => json!(dice.roll(2) == 0),
        2 => json!(dice.roll(2_000_000_000) as i64 - 1_000_000_000),
        3 => json!(dice.roll(1000) as f64 / 7.0),
        4 => json!(WORDS[dice.roll(WORDS.len())]),
        5 => Value::Array(
            (0..dice.roll(4))
                .map(|_| arbitrary(dice, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..dice.roll(6))
                .map(|_| {
                    (
                        KEYS[dice.roll(KEYS.len())].to_string(),
                        arbitrary(dice, depth - 1),
                    )
                })
                .collect(),
        ),
    }
}

#[test]
fn arbitrary_json_shapes_never_panic() {
    let mut dice = Dice(0x0dd_5ba9e5);
    for _ in 0..20_000 {
        let mut value = arbitrary(&mut dice, 7);
        if let Value::Object(map) = &mut value {
            map.insert("object".into(), json!("whatsapp_business_account"));
        }
        let result = parse(value.to_string().as_bytes());
        if value.is_object() {
            assert!(result.is_ok(), "{value}: {result:?}");
        }
    }
}

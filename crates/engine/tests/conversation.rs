//! Scripted conversations: every kind of line, and every kind of mistake
//! reported with its line, all at once.

use chrono::{TimeZone, Utc};
use switchboard_engine::conversation::{parse, LineError, ScriptedKind};
use switchboard_engine::{AssignTo, Event, ReplyBody};

/// Parses text that must be wrong, and returns its mistakes.
fn errors(text: &str) -> Vec<LineError> {
    match parse(text) {
        Ok(items) => panic!("expected errors, got {} items", items.len()),
        Err(e) => e,
    }
}

/// The one mistake of a one-line file.
fn only_error(line: &str) -> String {
    let e = errors(line);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].line, 1);
    e[0].message.clone()
}

const AT: &str = r#""at":"2026-11-23T09:00:00-03:00""#;

fn line(rest: &str) -> String {
    format!("{{{AT},{rest}}}")
}

#[test]
fn a_full_conversation_parses_line_by_line() {
    let text = r#"
// Maria asks for a refund.
{"at":"2026-11-23T09:00:00-03:00","message":{"from":"5511987650001","name":"Maria Souza","to":"+55 11 4000-1000","text":"Oi, quero um reembolso do pedido 8812"}}
{"at":"2026-11-23T09:00:00-03:00","agent":"ana@acme.com","online":true}
{"at":"2026-11-23T09:01:00-03:00","agent":"bruno@acme.com","online":false,"capacity":3}
{"at":"2026-11-23T09:04:00-03:00","reply":{"card":1,"agent":"ana@acme.com","text":"Olá Maria, vou verificar."}}
{"at":"2026-11-23T09:04:30-03:00","reply":{"card":1,"agent":"ana@acme.com","template":"csat_survey","language":"pt_BR","params":["Maria",8812]}}
{"at":"2026-11-23T09:05:00-03:00","move":{"card":1,"agent":"ana@acme.com","status":"waiting"}}

{"at":"2026-11-23T09:06:00-03:00","set":{"card":1,"agent":"ana@acme.com","fields":{"order_id":"8812","amount":120.5}}}
{"at":"2026-11-23T09:06:00-03:00","assign":{"card":1,"agent":"ana@acme.com","to":"bruno@acme.com"}}
{"at":"2026-11-23T09:06:00-03:00","assign":{"card":1,"agent":"ana@acme.com","team":"billing"}}
{"at":"2026-11-23T09:07:00-03:00","status":{"card":1,"message":-1,"status":"read"}}
{"at":"2026-11-23T12:08:00Z","message":{"from":"5511987650001","to":"+55 11 4000-1000","type":"image","image":{"id":"img-1","caption":"o recibo"}}}
{"at":"2026-11-23T09:09:00-03:00","message":{"id":"wamid.X","from":"5511987650001","to":"+55 11 4000-1000","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"r1","title":"Reembolso"}}}}
{"at":"2026-11-23T09:10:00-03:00","message":{"from":"5511987650001","to":"+55 11 4000-1000","location":{"latitude":-23.5,"longitude":-46.6}}}
{"at":"2026-11-24T18:00:00-03:00","until":true}
"#;
    let items = parse(text).expect("a valid conversation");
    assert_eq!(items.len(), 14);
    let lines: Vec<usize> = items.iter().map(|i| i.line).collect();
    assert_eq!(
        lines,
        [3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17],
        "blank lines and comments are skipped but counted"
    );
    assert_eq!(
        items[0].at,
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("valid")
    );
    match &items[0].what {
        ScriptedKind::Event(Event::Message(m)) => {
            assert_eq!(m.id, "sim-3");
            assert_eq!(m.from, "5511987650001");
            assert_eq!(m.name, "Maria Souza");
            assert_eq!(m.to, "+55 11 4000-1000");
            assert_eq!(m.kind, "text");
            assert_eq!(
                m.text.as_deref(),
                Some("Oi, quero um reembolso do pedido 8812")
            );
        }
        other => panic!("expected a message, got {other:?}"),
    }
    assert!(matches!(
        &items[1].what,
        ScriptedKind::Event(Event::Agent { email, online: Some(true), capacity: None }) if email == "ana@acme.com"
    ));
    assert!(matches!(
        &items[2].what,
        ScriptedKind::Event(Event::Agent {
            online: Some(false),
            capacity: Some(3),
            ..
        })
    ));
    match &items[3].what {
        ScriptedKind::Event(Event::Reply { card, agent, body }) => {
            assert_eq!(*card, 0, "card 1 is the first card, id 0");
            assert_eq!(agent, "ana@acme.com");
            assert_eq!(body, &ReplyBody::Text("Olá Maria, vou verificar.".into()));
        }
        other => panic!("expected a reply, got {other:?}"),
    }
    match &items[4].what {
        ScriptedKind::Event(Event::Reply { body, .. }) => assert_eq!(
            body,
            &ReplyBody::Template {
                name: "csat_survey".into(),
                language: "pt_BR".into(),
                params: vec!["Maria".into(), "8812".into()],
            }
        ),
        other => panic!("expected a template reply, got {other:?}"),
    }
    assert!(matches!(
        &items[5].what,
        ScriptedKind::Event(Event::Move { card: 0, status, .. }) if status == "waiting"
    ));
    match &items[6].what {
        ScriptedKind::Event(Event::Set { fields, .. }) => {
            assert_eq!(fields["order_id"], serde_json::json!("8812"));
            assert_eq!(fields["amount"], serde_json::json!(120.5));
        }
        other => panic!("expected a set, got {other:?}"),
    }
    assert!(matches!(
        &items[7].what,
        ScriptedKind::Event(Event::Assign { to: AssignTo::Agent(a), .. }) if a == "bruno@acme.com"
    ));
    assert!(matches!(
        &items[8].what,
        ScriptedKind::Event(Event::Assign { to: AssignTo::Team(t), .. }) if t == "billing"
    ));
    assert!(matches!(
        &items[9].what,
        ScriptedKind::Status { card: 0, message: -1, status } if status == "read"
    ));
    assert_eq!(items[9].card(), Some(0));
    match &items[10].what {
        ScriptedKind::Event(Event::Message(m)) => {
            assert_eq!(m.kind, "image");
            assert_eq!(m.text.as_deref(), Some("o recibo"), "a caption is its text");
            assert_eq!(m.name, "", "the name may be left out");
        }
        other => panic!("expected an image, got {other:?}"),
    }
    assert_eq!(
        items[10].raw["message"]["image"]["id"], "img-1",
        "the WhatsApp payload is kept as written"
    );
    match &items[11].what {
        ScriptedKind::Event(Event::Message(m)) => {
            assert_eq!(m.id, "wamid.X", "a given id is kept");
            assert_eq!(m.kind, "interactive");
            assert_eq!(m.text.as_deref(), Some("Reembolso"));
        }
        other => panic!("expected an interactive reply, got {other:?}"),
    }
    match &items[12].what {
        ScriptedKind::Event(Event::Message(m)) => {
            assert_eq!(m.kind, "location", "the payload's key names the type");
            assert_eq!(m.text, None);
        }
        other => panic!("expected a location, got {other:?}"),
    }
    assert!(matches!(items[13].what, ScriptedKind::Until));
    assert_eq!(items[13].kind(), "until");
    assert_eq!(items[13].card(), None);
}

#[test]
fn an_empty_file_is_an_empty_conversation() {
    assert!(parse("").expect("valid").is_empty());
    assert!(parse("\n// nothing yet\n\n").expect("valid").is_empty());
}

#[test]
fn invalid_json_says_where() {
    let m = only_error(r#"{"at":"2026-11-23T09:00:00-03:00" "until":true}"#);
    assert!(m.starts_with("invalid JSON at column 35"), "{m}");
    let m = only_error(r#"{"at":"2026-11-23T09:00:00-03:00","until":true"#);
    assert!(m.contains("the line ends at column"), "{m}");
    let m = only_error(r#"["at","until"]"#);
    assert!(m.contains("one JSON object"), "{m}");
    let m = only_error("not json");
    assert!(
        m.starts_with("invalid JSON: a line must be one JSON object"),
        "{m}"
    );
}

#[test]
fn a_missing_at_is_reported() {
    let m = only_error(r#"{"until":true}"#);
    assert!(m.starts_with("`at` is missing"), "{m}");
    assert!(m.contains("RFC 3339"), "{m}");
}

#[test]
fn a_bad_timestamp_is_quoted() {
    let m = only_error(r#"{"at":"2026-11-23 09:00","until":true}"#);
    assert!(
        m.contains("`at` \"2026-11-23 09:00\" is not an RFC 3339 time"),
        "{m}"
    );
    let m = only_error(r#"{"at":"2026-11-23T09:00:00","until":true}"#);
    assert!(m.contains("with offset"), "{m}");
    let m = only_error(r#"{"at":1700000000,"until":true}"#);
    assert!(m.contains("not a number"), "{m}");
}

#[test]
fn an_unknown_kind_lists_the_kinds_and_suggests_the_closest() {
    let m = only_error(&line(r#""replay":{"card":1}"#));
    assert!(m.contains("unknown kind of event `replay`"), "{m}");
    assert!(m.contains("message, agent, reply, move"), "{m}");
    assert!(m.contains("did you mean `reply`?"), "{m}");
    let m = only_error(&line(r#""colour":"blue""#));
    assert!(!m.contains("did you mean"), "nothing is close: {m}");
    let m = only_error(&format!("{{{AT}}}"));
    assert!(m.contains("names no event"), "{m}");
    let m = only_error(&line(r#""until":true,"move":{}"#));
    assert!(m.contains("one event per line"), "{m}");
}

#[test]
fn missing_and_ill_typed_fields_name_the_field_and_what_it_must_be() {
    let m = only_error(&line(r#""reply":{"agent":"ana@acme.com","text":"Oi"}"#));
    assert_eq!(m, "`reply` needs `card` (a card number, from 1)");
    let m = only_error(&line(
        r#""reply":{"card":"1","agent":"ana@acme.com","text":"Oi"}"#,
    ));
    assert_eq!(
        m,
        "`reply`'s `card` must be a card number, from 1, not \"1\""
    );
    let m = only_error(&line(
        r#""move":{"card":0,"agent":"ana@acme.com","status":"x"}"#,
    ));
    assert!(
        m.contains("`card` must be a card number, from 1, not 0"),
        "{m}"
    );
    let m = only_error(&line(r#""move":{"card":1,"status":"waiting"}"#));
    assert_eq!(m, "`move` needs `agent` (an e-mail)");
    let m = only_error(&line(r#""reply":{"card":1,"agent":"ana@acme.com"}"#));
    assert!(m.contains("`reply` needs `text`, or `template`"), "{m}");
    let m = only_error(&line(
        r#""reply":{"card":1,"agent":"ana@acme.com","template":"csat"}"#,
    ));
    assert!(m.contains("needs `language`"), "{m}");
    let m = only_error(&line(
        r#""set":{"card":1,"agent":"ana@acme.com","fields":[1]}"#,
    ));
    assert!(m.contains("`fields` must be an object"), "{m}");
    let m = only_error(&line(r#""assign":{"card":1,"agent":"ana@acme.com"}"#));
    assert!(m.contains("`assign` needs `to`"), "{m}");
    let m = only_error(&line(r#""message":{"from":"5511987650001","text":"Oi"}"#));
    assert_eq!(m, "`message` needs `to` (a text)");
    let m = only_error(&line(
        r#""message":{"from":"5511","to":"+55 11 4000-1000"}"#,
    ));
    assert!(m.contains("`message` needs `text`, or a `type`"), "{m}");
    let m = only_error(&line(r#""agent":"ana@acme.com""#));
    assert!(m.contains("needs `online`"), "{m}");
    let m = only_error(&line(r#""agent":"ana@acme.com","online":"yes""#));
    assert!(
        m.contains("`online` must be true or false, not \"yes\""),
        "{m}"
    );
    let m = only_error(&line(r#""until":false"#));
    assert!(m.contains("`until` must be `true`"), "{m}");
    let m = only_error(&line(r#""reply":"Oi""#));
    assert!(m.contains("`reply` must be an object like"), "{m}");
}

#[test]
fn a_misspelt_key_gets_a_suggestion() {
    let m = only_error(&line(
        r#""reply":{"card":1,"agent":"ana@acme.com","text":"Oi","tetx":"x"}"#,
    ));
    assert!(m.contains("`reply` takes no `tetx`"), "{m}");
    assert!(m.contains("did you mean `text`?"), "{m}");
    let m = only_error(&line(r#""agent":"ana@acme.com","onlin":true,"capacity":2"#));
    assert!(m.contains("unknown key `onlin`"), "{m}");
    assert!(m.contains("did you mean `online`?"), "{m}");
}

#[test]
fn a_delivery_status_must_be_one_whatsapp_reports() {
    let m = only_error(&line(r#""status":{"card":1,"message":-1,"status":"raed"}"#));
    assert!(m.contains("unknown delivery status \"raed\""), "{m}");
    assert!(m.contains("did you mean `read`?"), "{m}");
    let m = only_error(&line(r#""status":{"card":1,"message":0,"status":"read"}"#));
    assert!(
        m.contains("`message` must be a sent message's number"),
        "{m}"
    );
}

#[test]
fn times_going_backwards_name_both_times() {
    let text = r#"{"at":"2026-11-23T09:06:00-03:00","until":true}
{"at":"2026-11-23T09:05:00-03:00","until":true}
{"at":"2026-11-22T10:00:00-03:00","until":true}"#;
    let e = errors(text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].line, 2);
    assert_eq!(
        e[0].message,
        "`at` 09:05 is before the previous line's 09:06; events must be in time order"
    );
    assert_eq!(
        e[0].to_string(),
        "line 2: `at` 09:05 is before the previous line's 09:06; events must be in time order"
    );
    assert_eq!(e[1].line, 3);
    assert!(
        e[1].message.contains("2026-11-22 10:00") && e[1].message.contains("2026-11-23 09:06"),
        "other days show their date: {}",
        e[1].message
    );
}

#[test]
fn the_same_instant_in_another_offset_is_not_going_back() {
    let text = r#"{"at":"2026-11-23T09:00:00-03:00","until":true}
{"at":"2026-11-23T12:00:00Z","until":true}"#;
    assert_eq!(parse(text).expect("in order").len(), 2);
}

#[test]
fn every_mistake_of_every_line_is_collected() {
    let text = r#"{"at":"2026-11-23T09:00:00-03:00","message":{"from":"5511987650001","to":"+55 11 4000-1000","text":"Oi"}}
{"at":"2026-11-23T09:01:00-03:00","reply":{"agent":"ana@acme.com","text":"Olá"}}
not json
{"at":"yesterday","until":true}
{"at":"2026-11-23T09:02:00-03:00","mvoe":{"card":1}}
{"at":"2026-11-23T09:03:00-03:00","set":{"card":-2,"fields":{}}}"#;
    let e = errors(text);
    let lines: Vec<usize> = e.iter().map(|x| x.line).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6, 6, 6], "{e:#?}");
}

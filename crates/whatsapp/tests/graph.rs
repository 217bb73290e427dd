//! The Graph API client against the fake Graph API, over real HTTP on a
//! loopback port: bodies, answers, and the class of every kind of failure.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_whatsapp::fake::{FakeGraph, Scripted};
use switchboard_whatsapp::graph::{
    classify, request_body, ErrorClass, GraphClient, GraphError, Outgoing, SendRequest,
};

const PNID: &str = "106000000000042";
const CUSTOMER: &str = "5511999990001";
const WAIT: Duration = Duration::from_secs(5);

fn text(body: &str) -> SendRequest {
    SendRequest {
        phone_number_id: PNID.to_string(),
        to: CUSTOMER.to_string(),
        message: Outgoing::Text {
            body: body.to_string(),
        },
        reply_to: None,
        callback_data: None,
    }
}

fn buttons(titles: &[&str]) -> SendRequest {
    SendRequest {
        message: Outgoing::Buttons {
            body: "Resolvemos seu problema?".to_string(),
            buttons: titles
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("b{i}"), t.to_string()))
                .collect(),
        },
        ..text("")
    }
}

async fn fake_and_client() -> (FakeGraph, GraphClient) {
    let fake = FakeGraph::start().await.expect("the fake starts");
    let client = GraphClient::new(&fake.base_url(), "test-token");
    (fake, client)
}

/// Scripts one answer and returns the error the client gets for a text send.
async fn error_for(answer: Scripted) -> GraphError {
    let (fake, client) = fake_and_client().await;
    fake.script(vec![answer]);
    client
        .send(&text("Olá"))
        .await
        .expect_err("the scripted answer is an error")
}

fn scripted_error(http_status: u16, code: i64, message: &str) -> Scripted {
    Scripted::Error {
        http_status,
        code,
        message: message.to_string(),
    }
}

/// A port nothing listens on: bound by us, then released.
fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound port").port()
}

// --- sends ------------------------------------------------------------------

#[tokio::test]
async fn a_text_send_is_accepted_and_recorded_with_metas_body() {
    let (fake, client) = fake_and_client().await;

    let accepted = client
        .send(&text("Olá Ana, já verificamos…"))
        .await
        .unwrap();

    assert_eq!(accepted.wamid, "wamid.fake.1");
    assert_eq!(accepted.wa_id.as_deref(), Some(CUSTOMER));
    assert_eq!(accepted.message_status.as_deref(), Some("accepted"));
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].phone_number_id, PNID);
    assert_eq!(sent[0].authorization.as_deref(), Some("Bearer test-token"));
    assert_eq!(sent[0].wamid.as_deref(), Some("wamid.fake.1"));
    assert_eq!(
        sent[0].body,
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": CUSTOMER,
            "type": "text",
            "text": {"body": "Olá Ana, já verificamos…", "preview_url": false},
        })
    );
}

#[tokio::test]
async fn each_accepted_send_gets_a_fresh_wamid() {
    let (fake, client) = fake_and_client().await;

    let first = client.send(&text("um")).await.unwrap();
    let second = client.send(&text("dois")).await.unwrap();

    assert_eq!(first.wamid, "wamid.fake.1");
    assert_eq!(second.wamid, "wamid.fake.2");
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test]
async fn a_template_carries_its_params_as_a_body_component() {
    let (fake, client) = fake_and_client().await;
    let req = SendRequest {
        message: Outgoing::Template {
            name: "csat_survey".to_string(),
            language: "pt_BR".to_string(),
            params: vec!["Ana".to_string(), "#881".to_string()],
        },
        ..text("")
    };

    client.send(&req).await.unwrap();

    assert_eq!(
        fake.sent()[0].body["template"],
        json!({
            "name": "csat_survey",
            "language": {"code": "pt_BR"},
            "components": [{"type": "body", "parameters": [
                {"type": "text", "text": "Ana"},
                {"type": "text", "text": "#881"},
            ]}],
        })
    );
    assert_eq!(fake.sent()[0].body["type"], "template");
}

#[tokio::test]
async fn a_template_without_params_has_no_components() {
    let req = SendRequest {
        message: Outgoing::Template {
            name: "hello_world".to_string(),
            language: "en_US".to_string(),
            params: vec![],
        },
        ..text("")
    };

    let body = request_body(&req);

    assert_eq!(
        body["template"],
        json!({"name": "hello_world", "language": {"code": "en_US"}})
    );
}

#[tokio::test]
async fn buttons_go_as_an_interactive_button_message() {
    let (fake, client) = fake_and_client().await;

    client.send(&buttons(&["Sim", "Ainda não"])).await.unwrap();

    let body = &fake.sent()[0].body;
    assert_eq!(body["type"], "interactive");
    assert_eq!(
        body["interactive"],
        json!({
            "type": "button",
            "body": {"text": "Resolvemos seu problema?"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "b0", "title": "Sim"}},
                {"type": "reply", "reply": {"id": "b1", "title": "Ainda não"}},
            ]},
        })
    );
}

#[tokio::test]
async fn a_media_send_by_link_carries_link_and_filename() {
    let (fake, client) = fake_and_client().await;
    let req = SendRequest {
        message: Outgoing::Media {
            kind: "document".to_string(),
            id: None,
            link: Some("https://files.example/nf.pdf".to_string()),
            caption: None,
            filename: Some("nf.pdf".to_string()),
        },
        ..text("")
    };

    client.send(&req).await.unwrap();

    let body = &fake.sent()[0].body;
    assert_eq!(body["type"], "document");
    assert_eq!(
        body["document"],
        json!({"link": "https://files.example/nf.pdf", "filename": "nf.pdf"})
    );
}

#[tokio::test]
async fn a_reply_carries_the_answered_wamid_as_context() {
    let (fake, client) = fake_and_client().await;
    let req = SendRequest {
        reply_to: Some("wamid.HBgNinbound".to_string()),
        ..text("Respondendo")
    };

    client.send(&req).await.unwrap();

    assert_eq!(
        fake.sent()[0].body["context"],
        json!({"message_id": "wamid.HBgNinbound"})
    );
}

#[tokio::test]
async fn callback_data_is_sent_for_meta_to_echo_in_statuses() {
    let (fake, client) = fake_and_client().await;
    let req = SendRequest {
        callback_data: Some("outbox-9f3c".to_string()),
        ..text("Olá")
    };

    client.send(&req).await.unwrap();

    let body = &fake.sent()[0].body;
    assert_eq!(body["biz_opaque_callback_data"], "outbox-9f3c");
    assert!(body.get("context").is_none());
}

#[tokio::test]
async fn a_bsuid_goes_in_recipient_and_comes_back_without_a_wa_id() {
    let (fake, client) = fake_and_client().await;
    let req = SendRequest {
        to: "BR.4417029988".to_string(),
        ..text("Olá")
    };

    let accepted = client.send(&req).await.unwrap();

    let body = &fake.sent()[0].body;
    assert_eq!(body["recipient"], "BR.4417029988");
    assert!(body.get("to").is_none());
    assert_eq!(accepted.wa_id, None);
}

// --- Graph errors, by class -------------------------------------------------

#[tokio::test]
async fn a_closed_window_is_reported_as_window_closed_with_metas_details() {
    let error = error_for(scripted_error(400, 131047, "Re-engagement message")).await;

    assert_eq!(error.class, ErrorClass::WindowClosed);
    assert_eq!(error.code, Some(131047));
    assert_eq!(error.http_status, Some(400));
    assert_eq!(error.message, "(#131047) Re-engagement message");
    assert!(error.fbtrace_id.is_some());
    let shown = error.to_string();
    assert!(shown.contains("131047"), "{shown}");
    assert!(shown.contains("Re-engagement message"), "{shown}");
}

#[tokio::test]
async fn a_throughput_limit_is_transient() {
    let error = error_for(scripted_error(400, 130429, "Rate limit hit")).await;

    assert_eq!(error.class, ErrorClass::Transient);
    assert_eq!(error.code, Some(130429));
}

#[tokio::test]
async fn an_undeliverable_message_is_permanent() {
    let error = error_for(scripted_error(400, 131026, "Message undeliverable")).await;

    assert_eq!(error.class, ErrorClass::Permanent);
}

#[tokio::test]
async fn an_expired_token_is_for_operations() {
    let error = error_for(scripted_error(401, 190, "Error validating access token")).await;

    assert_eq!(error.class, ErrorClass::Operations);
    assert_eq!(error.http_status, Some(401));
}

#[tokio::test]
async fn something_went_wrong_is_ambiguous() {
    let error = error_for(scripted_error(500, 131000, "Something went wrong")).await;

    assert_eq!(error.class, ErrorClass::Ambiguous);
}

#[tokio::test]
async fn an_unknown_code_is_permanent() {
    let error = error_for(scripted_error(400, 999_999, "Brand new failure")).await;

    assert_eq!(error.class, ErrorClass::Permanent);
    assert_eq!(error.code, Some(999_999));
}

#[tokio::test]
async fn scripted_answers_are_used_in_order_and_then_sends_are_accepted_again() {
    let (fake, client) = fake_and_client().await;
    fake.script(vec![
        scripted_error(400, 130429, "Rate limit hit"),
        scripted_error(400, 131047, "Re-engagement message"),
    ]);

    let first = client.send(&text("1")).await.unwrap_err();
    let second = client.send(&text("2")).await.unwrap_err();
    let third = client.send(&text("3")).await.unwrap();

    assert_eq!(first.class, ErrorClass::Transient);
    assert_eq!(second.class, ErrorClass::WindowClosed);
    assert_eq!(third.wamid, "wamid.fake.1");
    let answered: Vec<_> = fake.sent().into_iter().map(|r| r.wamid).collect();
    assert_eq!(answered, vec![None, None, Some("wamid.fake.1".to_string())]);
}

// --- failures without a Graph error -------------------------------------------

#[tokio::test]
async fn http_503_without_a_body_is_ambiguous() {
    let error = error_for(Scripted::Status(503)).await;

    assert_eq!(error.class, ErrorClass::Ambiguous);
    assert_eq!(error.code, None);
    assert_eq!(error.http_status, Some(503));
}

#[tokio::test]
async fn a_dropped_connection_is_ambiguous_and_the_fake_did_receive_the_send() {
    let (fake, client) = fake_and_client().await;
    fake.script(vec![Scripted::Drop]);

    let error = client.send(&text("Olá")).await.unwrap_err();

    assert_eq!(error.class, ErrorClass::Ambiguous, "{error}");
    assert_eq!(error.http_status, None);
    assert_eq!(fake.sent().len(), 1);
    // The same client keeps working on a fresh connection.
    assert!(client.send(&text("de novo")).await.is_ok());
}

#[tokio::test]
async fn a_timeout_after_the_request_left_is_ambiguous() {
    let (fake, client) = fake_and_client().await;
    let client = client.with_timeout(Duration::from_millis(200));
    fake.script(vec![Scripted::Delay(Duration::from_secs(30))]);

    let error = client.send(&text("Olá")).await.unwrap_err();

    assert_eq!(error.class, ErrorClass::Ambiguous, "{error}");
    assert!(error.message.contains("timed out"), "{}", error.message);
    // The fake got it: exactly why a timeout must never be resent blindly.
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn a_short_delay_within_the_timeout_is_still_accepted() {
    let (fake, client) = fake_and_client().await;
    fake.script(vec![Scripted::Delay(Duration::from_millis(20))]);

    let accepted = client.send(&text("Olá")).await.unwrap();

    assert_eq!(accepted.wamid, "wamid.fake.1");
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let client = GraphClient::new(&format!("http://127.0.0.1:{}/v25.0", unused_port()), "t");

    let error = client.send(&text("Olá")).await.unwrap_err();

    assert_eq!(error.class, ErrorClass::Transient, "{error}");
}

#[tokio::test]
async fn wait_for_sends_returns_once_enough_sends_arrived() {
    let (fake, client) = fake_and_client().await;
    let sending = tokio::spawn(async move {
        client.send(&text("1")).await.unwrap();
        client.send(&text("2")).await.unwrap();
    });

    let sent = fake.wait_for_sends(2, WAIT).await;

    assert_eq!(sent.len(), 2);
    sending.await.unwrap();
}

#[tokio::test]
async fn wait_for_sends_gives_up_after_its_timeout() {
    let fake = FakeGraph::start().await.unwrap();

    let sent = fake.wait_for_sends(1, Duration::from_millis(20)).await;

    assert!(sent.is_empty());
}

// --- limits and tokens ------------------------------------------------------

#[tokio::test]
async fn four_buttons_are_refused_before_any_request_is_made() {
    let (fake, client) = fake_and_client().await;

    let error = client
        .send(&buttons(&["Um", "Dois", "Três", "Quatro"]))
        .await
        .unwrap_err();

    assert_eq!(error.class, ErrorClass::Permanent);
    assert_eq!(error.http_status, None);
    assert!(error.message.contains("4 buttons"), "{}", error.message);
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn a_long_button_title_or_text_is_refused_locally() {
    let (fake, client) = fake_and_client().await;

    let title = client
        .send(&buttons(&["Um título longo demais aqui"]))
        .await
        .unwrap_err();
    let long_text = client.send(&text(&"a".repeat(4097))).await.unwrap_err();
    let longest_allowed = client.send(&text(&"é".repeat(4096))).await;

    assert_eq!(title.class, ErrorClass::Permanent);
    assert_eq!(long_text.class, ErrorClass::Permanent);
    assert!(longest_allowed.is_ok(), "{longest_allowed:?}");
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn the_fake_refuses_four_buttons_like_meta() {
    let fake = FakeGraph::start().await.unwrap();
    let mut body = request_body(&buttons(&["Um", "Dois", "Três"]));
    body["interactive"]["action"]["buttons"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "reply", "reply": {"id": "b3", "title": "Quatro"}}));

    let (status, answer) = raw_post(&fake, Some("Bearer t"), &body).await;

    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], 131009);
    assert_eq!(fake.sent()[0].wamid, None);
}

#[tokio::test]
async fn the_fake_refuses_a_text_over_4096_characters_like_meta() {
    let fake = FakeGraph::start().await.unwrap();
    let body = request_body(&text(&"a".repeat(4097)));

    let (status, answer) = raw_post(&fake, Some("Bearer t"), &body).await;

    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], 100);
}

#[tokio::test]
async fn the_fake_takes_to_over_recipient_and_requires_one_of_them() {
    let fake = FakeGraph::start().await.unwrap();
    let mut both = request_body(&text("Olá"));
    both["recipient"] = json!("BR.4417029988");
    let mut neither = request_body(&text("Olá"));
    neither.as_object_mut().unwrap().remove("to");

    let (both_status, both_answer) = raw_post(&fake, Some("Bearer t"), &both).await;
    let (neither_status, neither_answer) = raw_post(&fake, Some("Bearer t"), &neither).await;

    assert_eq!(both_status, 200);
    assert_eq!(both_answer["contacts"][0]["input"], CUSTOMER);
    assert_eq!(both_answer["contacts"][0]["wa_id"], CUSTOMER);
    assert_eq!(neither_status, 400);
    assert_eq!(neither_answer["error"]["code"], 100);
}

#[tokio::test]
async fn the_fake_refuses_another_messaging_product() {
    let fake = FakeGraph::start().await.unwrap();
    let mut body = request_body(&text("Olá"));
    body["messaging_product"] = json!("instagram");

    let (status, answer) = raw_post(&fake, Some("Bearer t"), &body).await;

    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], 100);
}

#[tokio::test]
async fn a_missing_token_is_for_operations() {
    let fake = FakeGraph::start().await.unwrap();
    let client = GraphClient::new(&fake.base_url(), "");

    let error = client.send(&text("Olá")).await.unwrap_err();

    assert_eq!(error.class, ErrorClass::Operations);
    assert_eq!(error.code, Some(190));
    assert_eq!(error.http_status, Some(401));
    assert_eq!(fake.sent()[0].wamid, None);
}

#[tokio::test]
async fn the_fake_answers_401_with_code_190_without_an_authorization_header() {
    let fake = FakeGraph::start().await.unwrap();

    let (status, answer) = raw_post(&fake, None, &request_body(&text("Olá"))).await;

    assert_eq!(status, 401);
    assert_eq!(answer["error"]["code"], 190);
    assert_eq!(fake.sent()[0].authorization, None);
}

async fn raw_post(fake: &FakeGraph, authorization: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/{PNID}/messages", fake.base_url()))
        .json(body);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

// --- mark as read -------------------------------------------------------------

#[tokio::test]
async fn mark_read_is_recorded_and_is_not_a_send() {
    let (fake, client) = fake_and_client().await;

    client
        .mark_read(PNID, "wamid.HBgNinbound1", false)
        .await
        .unwrap();
    client
        .mark_read(PNID, "wamid.HBgNinbound2", true)
        .await
        .unwrap();

    assert_eq!(
        fake.read_marks(),
        vec!["wamid.HBgNinbound1", "wamid.HBgNinbound2"]
    );
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn mark_read_does_not_consume_scripted_send_answers() {
    let (fake, client) = fake_and_client().await;
    fake.script(vec![scripted_error(400, 131047, "Re-engagement message")]);

    client.mark_read(PNID, "wamid.in", false).await.unwrap();
    let error = client.send(&text("Olá")).await.unwrap_err();

    assert_eq!(error.class, ErrorClass::WindowClosed);
}

// --- media --------------------------------------------------------------------

#[tokio::test]
async fn media_is_downloaded_with_its_mime_type() {
    let (fake, client) = fake_and_client().await;
    let bytes = b"\x89PNG fake image".to_vec();
    fake.add_media("7001", "image/png", bytes.clone(), Duration::from_secs(300));

    let (downloaded, mime) = client.download_media("7001").await.unwrap();

    assert_eq!(downloaded, bytes);
    assert_eq!(mime, "image/png");
    assert_eq!(fake.media_lookups(), vec!["7001"]);
}

#[tokio::test]
async fn an_expired_media_url_is_fetched_again_once() {
    let (fake, client) = fake_and_client().await;
    fake.add_media(
        "7002",
        "audio/ogg",
        b"voice".to_vec(),
        Duration::from_secs(300),
    );
    fake.expire_next_media_urls(1);

    let (downloaded, mime) = client.download_media("7002").await.unwrap();

    assert_eq!(downloaded, b"voice");
    assert_eq!(mime, "audio/ogg");
    assert_eq!(fake.media_lookups(), vec!["7002", "7002"]);
}

#[tokio::test]
async fn media_whose_urls_keep_expiring_fails_as_transient_after_one_refetch() {
    let (fake, client) = fake_and_client().await;
    fake.add_media("7003", "image/jpeg", b"jpeg".to_vec(), Duration::ZERO);

    let error = client.download_media("7003").await.unwrap_err();

    assert_eq!(error.class, ErrorClass::Transient);
    assert_eq!(error.http_status, Some(404));
    assert_eq!(fake.media_lookups().len(), 2);
}

#[tokio::test]
async fn unknown_media_is_a_permanent_graph_error() {
    let (_fake, client) = fake_and_client().await;

    let error = client.download_media("404404").await.unwrap_err();

    assert_eq!(error.class, ErrorClass::Permanent);
    assert_eq!(error.code, Some(100));
}

#[tokio::test]
async fn the_media_url_needs_the_bearer_token() {
    let fake = FakeGraph::start().await.unwrap();
    fake.add_media(
        "7004",
        "image/png",
        b"png".to_vec(),
        Duration::from_secs(300),
    );
    let http = reqwest::Client::new();
    let info: Value = http
        .get(format!("{}/7004", fake.base_url()))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = info["url"].as_str().unwrap();

    let without = http.get(url).send().await.unwrap();
    let with = http.get(url).bearer_auth("t").send().await.unwrap();

    assert_eq!(info["file_size"], 3);
    assert_eq!(info["mime_type"], "image/png");
    assert_eq!(without.status(), 401);
    assert_eq!(with.status(), 200);
    assert_eq!(with.bytes().await.unwrap().as_ref(), b"png");
}

// --- classify -----------------------------------------------------------------

#[test]
fn every_code_in_the_design_table_has_its_class() {
    use ErrorClass::*;
    let table: &[(i64, ErrorClass)] = &[
        // transient
        (2, Transient),
        (4, Transient),
        (80007, Transient),
        (130429, Transient),
        (131016, Transient),
        (131056, Transient),
        (131057, Transient),
        (133004, Transient),
        // may have been accepted
        (1, Ambiguous),
        (131000, Ambiguous),
        // the window
        (131047, WindowClosed),
        // permanent: recipient, our bug, templates
        (131049, Permanent),
        (131026, Permanent),
        (131050, Permanent),
        (131051, Permanent),
        (131052, Permanent),
        (131053, Permanent),
        (100, Permanent),
        (131008, Permanent),
        (131009, Permanent),
        (131021, Permanent),
        (135000, Permanent),
        (131062, Permanent),
        (130472, Permanent),
        (132000, Permanent),
        (132001, Permanent),
        (132005, Permanent),
        (132007, Permanent),
        (132012, Permanent),
        (132015, Permanent),
        (132016, Permanent),
        (132068, Permanent),
        (132069, Permanent),
        // operations: token, permissions, account, number
        (131048, Operations),
        (0, Operations),
        (3, Operations),
        (10, Operations),
        (190, Operations),
        (200, Operations),
        (250, Operations),
        (299, Operations),
        (131005, Operations),
        (368, Operations),
        (131031, Operations),
        (131042, Operations),
        (131045, Operations),
        (131037, Operations),
        (133010, Operations),
        // unknown: never loop
        (130403, Permanent),
        (300, Permanent),
        (199, Permanent),
        (-1, Permanent),
        (42, Permanent),
    ];
    let wrong: Vec<_> = table
        .iter()
        .filter(|(code, class)| classify(*code) != *class)
        .map(|(code, class)| format!("{code}: expected {class:?}, got {:?}", classify(*code)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

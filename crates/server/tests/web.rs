//! The web pages over real HTTP: log-in (CSRF, wrong passwords, the limit),
//! rights by URL, forms without their token, a reply, a forbidden move with
//! its reason, and customer text shown as text.

mod common;

use common::{Harness, PASSWORD};
use std::collections::BTreeMap;
use std::time::Duration;

const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  status new open initial
  status doing active
  status done done
  flow new -> doing
  flow doing -> done
  team front { ana@acme.com }
}

pipe sales "Sales" {
  number "+55 11 4000-2000"
  status lead open initial
  status won done
  flow lead -> won
  team closers { rafa@acme.com }
}
"#;

/// A browser without JavaScript: keeps cookies, does not follow redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(h: &Harness) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: h.url(""),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, r: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let answer = r
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .expect("the server answers");
        for c in answer.headers().get_all("set-cookie") {
            let c = c.to_str().expect("ascii");
            let (kv, _) = c.split_once(';').unwrap_or((c, ""));
            if let Some((k, v)) = kv.split_once('=') {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: answer.status().as_u16(),
            location: answer
                .headers()
                .get("location")
                .map(|l| l.to_str().expect("ascii").to_string()),
            body: answer.text().await.expect("a body"),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }

    /// The CSRF token of the page's first form.
    fn csrf(page: &Page) -> String {
        let at = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        page.body[at..]
            .split('"')
            .next()
            .expect("a value")
            .to_string()
    }

    async fn log_in(&mut self, email: &str, password: &str) -> Page {
        let login = self.get("/login").await;
        let csrf = Browser::csrf(&login);
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}

async fn start() -> Harness {
    let h = Harness::start(FLOW).await;
    for (email, role) in [("ana@acme.com", "agent"), ("rafa@acme.com", "agent")] {
        h.person(email, role).await;
    }
    h
}

#[tokio::test]
async fn pages_need_a_log_in_and_a_right_password() {
    let h = start().await;
    let mut b = Browser::new(&h);
    let home = b.get("/").await;
    assert_eq!(
        (home.status, home.location.as_deref()),
        (303, Some("/login"))
    );
    let wrong = b.log_in("ana@acme.com", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong
        .body
        .contains("That e-mail and password do not match."));
    let ok = b.log_in("ANA@acme.com", PASSWORD).await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/")));
    let session = b
        .cookies
        .get("sb_session")
        .expect("a session cookie")
        .clone();
    assert!(session.starts_with("sbs_"));
    let home = b.get("/").await;
    assert!(
        home.body.contains("/pipes/support") && !home.body.contains("/pipes/sales"),
        "{}",
        home.body
    );
    // Logging out ends the session.
    let csrf = Browser::csrf(&home);
    assert_eq!(b.post("/logout", &[("csrf", &csrf)]).await.status, 303);
    b.cookies.insert("sb_session".into(), session);
    assert_eq!(b.get("/").await.status, 303);
    h.finish().await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site() {
    let h = start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http.get(h.url("/login")).send().await.expect("answer");
    let cookie = login
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    let body = login.text().await.expect("body");
    let csrf = Browser::csrf(&Page {
        status: 200,
        location: None,
        body,
    });
    let token = cookie.split(';').next().expect("kv").to_string();
    let answer = http
        .post(h.url("/login"))
        .header("cookie", token)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ana@acme.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("answer");
    let session = answer
        .headers()
        .get("set-cookie")
        .expect("session")
        .to_str()
        .expect("ascii");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    h.finish().await;
}

#[tokio::test]
async fn log_ins_are_refused_without_their_form_token_and_limited_after_failures() {
    let h = start().await;
    let mut b = Browser::new(&h);
    let forged = b
        .post(
            "/login",
            &[("email", "ana@acme.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, 403);
    for _ in 0..5 {
        assert_eq!(b.log_in("ana@acme.com", "guess").await.status, 401);
    }
    let limited = b.log_in("ana@acme.com", PASSWORD).await;
    assert_eq!(limited.status, 429);
    assert!(limited.body.contains("Too many attempts"));
    h.finish().await;
}

#[tokio::test]
async fn an_agent_of_another_pipe_cannot_open_a_card_by_its_url() {
    let h = start().await;
    h.customer_says("5511987650001", "Maria", "wamid.web.1", "Oi")
        .await;
    h.card_when(1, |_| true).await;
    let mut rafa = Browser::new(&h);
    rafa.log_in("rafa@acme.com", PASSWORD).await;
    let page = rafa.get("/cards/c_support_1").await;
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("Maria"));
    assert_eq!(rafa.get("/pipes/support").await.status, 404);
    h.finish().await;
}

#[tokio::test]
async fn an_agent_replies_from_the_card_page_and_forms_need_their_token() {
    let h = start().await;
    h.customer_says(
        "5511987650001",
        "Maria",
        "wamid.web.2",
        "Oi <script>alert(1)</script> <img src=x onerror=alert(2)>",
    )
    .await;
    h.card_when(1, |_| true).await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let page = ana.get("/cards/c_support_1").await;
    assert_eq!(page.status, 200);
    // The customer's text is text, never markup.
    assert!(
        page.body
            .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<img src=x"));
    let forged = ana
        .post("/cards/c_support_1/reply", &[("text", "hi")])
        .await;
    assert_eq!(forged.status, 403);
    let csrf = Browser::csrf(&page);
    let sent = ana
        .post(
            "/cards/c_support_1/reply",
            &[("csrf", &csrf), ("text", "Olá Maria!")],
        )
        .await;
    assert_eq!(
        (sent.status, sent.location.as_deref()),
        (303, Some("/cards/c_support_1"))
    );
    let out = h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    assert_eq!(out[0].body["text"]["body"], "Olá Maria!");
    let board = ana.get("/pipes/support").await;
    assert!(
        board.body.contains("sla-green"),
        "we answered last: {}",
        board.body
    );
    h.finish().await;
}

#[tokio::test]
async fn a_forbidden_move_shows_its_reason() {
    let h = start().await;
    h.customer_says("5511987650001", "Maria", "wamid.web.3", "Oi")
        .await;
    h.card_when(1, |_| true).await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let page = ana.get("/cards/c_support_1").await;
    let csrf = Browser::csrf(&page);
    let refused = ana
        .post(
            "/cards/c_support_1/move",
            &[("csrf", &csrf), ("status", "done")],
        )
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused
            .body
            .contains("the flow does not allow `new` -&gt; `done`"),
        "{}",
        refused.body
    );
    h.finish().await;
}

#[tokio::test]
async fn the_phone_simulator_exists_only_in_the_demo() {
    let h = start().await;
    let mut b = Browser::new(&h);
    assert_eq!(b.get("/demo/phone").await.status, 404);
    h.finish().await;
}

#[tokio::test]
async fn the_live_stream_sends_events_browsers_dispatch() {
    let h = start().await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let cookie: Vec<String> = ana
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut stream = reqwest::Client::new()
        .get(h.url("/events"))
        .header("cookie", cookie.join("; "))
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    h.customer_says("5511987650001", "Maria", "wamid.web.live", "Oi")
        .await;
    let chunk = tokio::time::timeout(Duration::from_secs(20), stream.chunk())
        .await
        .expect("an event in time")
        .expect("a chunk")
        .expect("not the end");
    let text = String::from_utf8_lossy(&chunk);
    // A browser drops an event without a data line.
    assert!(
        text.contains("event: change") && text.contains("data: "),
        "{text}"
    );
    h.finish().await;
}

#[tokio::test]
async fn going_online_takes_the_waiting_card_and_the_board_filters_find_it() {
    let flow = FLOW.replace(
        "  team front { ana@acme.com }",
        "  team front { ana@acme.com }\n  rule take on card.created {\n    assign front round_robin available\n  }",
    );
    let h = Harness::start(&flow).await;
    h.person("ana@acme.com", "agent").await;
    h.customer_says(
        "5511987650001",
        "Maria",
        "wamid.web.q",
        "Preciso trocar o endereço",
    )
    .await;
    h.card_when(1, |c| c.assignee.is_none()).await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let board = ana.get("/pipes/support?show=unassigned").await;
    assert!(
        board.body.contains("c_support_1"),
        "waiting for someone: {}",
        board.body
    );
    let home = ana.get("/").await;
    assert!(home.body.contains("Away"), "{}", home.body);
    let csrf = Browser::csrf(&home);
    let bad = ana
        .post(
            "/availability",
            &[("csrf", &csrf), ("online", "yes"), ("capacity", "lots")],
        )
        .await;
    assert_eq!(bad.status, 422);
    let online = ana
        .post(
            "/availability",
            &[("csrf", &csrf), ("online", "yes"), ("capacity", "3")],
        )
        .await;
    assert_eq!(online.status, 303);
    // At once: the queued card is hers.
    let card = h
        .card_when(1, |c| c.assignee.as_deref() == Some("ana@acme.com"))
        .await;
    assert_eq!(card.number, 1);
    let mine = ana.get("/pipes/support?show=mine").await;
    assert!(mine.body.contains("c_support_1"));
    let none = ana.get("/pipes/support?show=unassigned").await;
    assert!(!none.body.contains("c_support_1"));
    let found = ana.get("/pipes/support?q=endere%C3%A7o").await;
    assert!(found.body.contains("c_support_1"));
    let missing = ana.get("/pipes/support?q=nada").await;
    assert!(!missing.body.contains("c_support_1"));
    assert!(ana.get("/").await.body.contains("Online"));
    h.finish().await;
}

#[tokio::test]
async fn managers_see_the_dashboard_and_agents_do_not() {
    let h = start().await;
    h.person("boss@acme.com", "admin").await;
    h.customer_says("5511987650001", "Maria", "wamid.web.d", "Oi")
        .await;
    h.customer_says("5511987650002", "João", "wamid.web.e", "Oi")
        .await;
    h.card_when(2, |_| true).await;
    let mut boss = Browser::new(&h);
    boss.log_in("boss@acme.com", PASSWORD).await;
    // The boss answers João and resolves his card.
    let card = boss.get("/cards/c_support_2").await;
    let csrf = Browser::csrf(&card);
    boss.post(
        "/cards/c_support_2/reply",
        &[("csrf", &csrf), ("text", "Pronto")],
    )
    .await;
    for status in ["doing", "done"] {
        let moved = boss
            .post(
                "/cards/c_support_2/move",
                &[("csrf", &csrf), ("status", status)],
            )
            .await;
        assert_eq!(moved.status, 303, "{}", moved.body);
    }
    h.card_when(2, |c| !c.open).await;
    let page = boss.get("/dashboard").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Support") && page.body.contains("Sales"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("<span class=\"n\">1</span> customer waiting"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<svg"));
    for figure in [
        "<span class=\"n\">1</span> open",
        "<span class=\"n\">1</span> resolved today",
        // No SLA in this workflow: nothing to comply with.
        "<span class=\"n\">—</span> within SLA",
    ] {
        assert!(page.body.contains(figure), "{figure}: {}", page.body);
    }
    // Both the first reply and the resolution have a time now.
    for name in ["first reply, median", "resolution, median"] {
        let at = page.body.find(name).expect(name);
        let tile = &page.body[page.body[..at].rfind("<span").expect("tile")..at];
        assert!(!tile.contains('—'), "{name}: {tile}");
    }
    assert!(
        page.body.contains("Open work per team") && page.body.contains("no team yet"),
        "{}",
        page.body
    );
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    assert_eq!(ana.get("/dashboard").await.status, 403);
    h.finish().await;
}

#[tokio::test]
async fn fields_are_edited_with_their_types_and_a_closed_window_offers_templates() {
    let flow = FLOW.replace(
        "  status new open initial\n  status doing",
        "  field priority: choice(low, normal, high) = normal\n  field amount: number\n  status new open initial\n  status doing",
    );
    let h = Harness::start(&flow).await;
    h.person("ana@acme.com", "agent").await;
    h.customer_says("5511987650001", "Maria", "wamid.web.f", "Oi")
        .await;
    h.card_when(1, |_| true).await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let page = ana.get("/cards/c_support_1").await;
    assert!(
        page.body.contains("name=\"field.priority\""),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    let saved = ana
        .post(
            "/cards/c_support_1/fields",
            &[
                ("csrf", &csrf),
                ("field.priority", "high"),
                ("field.amount", "120.5"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303);
    let card = h
        .card_when(1, |c| c.view.contains("\"priority\":\"high\""))
        .await;
    assert!(card.view.contains("\"amount\":120.5"), "{}", card.view);
    // WhatsApp says the window is closed: the card offers a template.
    h.fake
        .script(vec![switchboard_whatsapp::fake::Scripted::Error {
            http_status: 400,
            code: 131047,
            message: "(#131047) Re-engagement message".into(),
        }]);
    let reply = ana
        .post(
            "/cards/c_support_1/reply",
            &[("csrf", &csrf), ("text", "Oi Maria")],
        )
        .await;
    assert_eq!(reply.status, 303);
    h.card_when(1, |c| c.template_needed).await;
    let page = ana.get("/cards/c_support_1").await;
    assert!(
        page.body.contains("action=\"/cards/c_support_1/template\""),
        "{}",
        page.body
    );
    let sent = ana
        .post(
            "/cards/c_support_1/template",
            &[
                ("csrf", &csrf),
                ("template", "follow_up"),
                ("language", "pt_BR"),
                ("params", "Maria, 8812"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303);
    let out = h.fake.wait_for_sends(2, Duration::from_secs(20)).await;
    assert_eq!(out[1].body["template"]["name"], "follow_up");
    assert_eq!(
        out[1].body["template"]["components"][0]["parameters"][1]["text"],
        "8812"
    );
    h.finish().await;
}

fn message_body(id: &str, kind: &str, payload: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"551140001000","phone_number_id":"106000000000042"}},"contacts":[{{"profile":{{"name":"Maria"}},"wa_id":"5511987650001"}}],"messages":[{{"from":"5511987650001","id":"{id}","timestamp":"1790000000","type":"{kind}","{kind}":{payload}}}]}}}}]}}]}}"#
    )
}

#[tokio::test]
async fn every_message_type_is_shown_and_media_come_through_our_proxy_only_to_those_who_may_see() {
    let h = start().await;
    h.fake.add_media(
        "880011",
        "image/jpeg",
        b"\xff\xd8jpeg bytes".to_vec(),
        Duration::from_secs(300),
    );
    for (id, kind, payload) in [
        (
            "wamid.t.1",
            "image",
            r#"{"id":"880011","mime_type":"image/jpeg","sha256":"x","caption":"a foto"}"#,
        ),
        (
            "wamid.t.2",
            "location",
            r#"{"latitude":-23.5,"longitude":-46.6,"name":"Loja"}"#,
        ),
        ("wamid.t.3", "poll", r#"{"question":"?"}"#),
    ] {
        let body = message_body(id, kind, payload);
        assert_eq!(h.post_signed(body.as_bytes()).await.status(), 200);
    }
    h.settle().await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let page = ana.get("/cards/c_support_1").await;
    // Attribute values are HTML-escaped (`/` as `&#x2f;`); browsers read them back.
    let unescaped = page.body.replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(
        unescaped.contains("<img class=\"media\" src=\"/cards/c_support_1/media/wamid.t.1\""),
        "{unescaped}"
    );
    assert!(
        unescaped.contains("openstreetmap.org/?mlat=-23.5&mlon=-46.6"),
        "{unescaped}"
    );
    assert!(
        page.body.contains("[unsupported content: poll]"),
        "{}",
        page.body
    );
    let image = ana.get("/cards/c_support_1/media/wamid.t.1").await;
    assert_eq!(image.status, 200);
    assert!(image.body.contains("jpeg bytes"));
    let mut rafa = Browser::new(&h);
    rafa.log_in("rafa@acme.com", PASSWORD).await;
    assert_eq!(
        rafa.get("/cards/c_support_1/media/wamid.t.1").await.status,
        404
    );
    h.finish().await;
}

/// An operator sees what needs them: the alerts raised and the webhooks
/// kept but flagged, with why and what they said; agents do not.
#[tokio::test]
async fn managers_see_alerts_and_flagged_webhooks_and_agents_do_not() {
    let h = start().await;
    h.person("boss@acme.com", "manager").await;
    let mut boss = Browser::new(&h);
    boss.log_in("boss@acme.com", PASSWORD).await;
    let calm = boss.get("/alerts").await;
    assert_eq!(calm.status, 200);
    assert!(
        calm.body.contains("No alerts.") && calm.body.contains("No webhook was flagged."),
        "{}",
        calm.body
    );

    // A message to a number no pipe is fed by: kept, flagged and alerted.
    assert_eq!(
        h.customer_writes_to_an_unknown_number("wamid.web.lost", "Alguém aí? <b>")
            .await,
        200
    );
    h.settle().await;
    let page = boss.get("/alerts").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("+552130005000") && page.body.contains("no pipe"),
        "the note says why: {}",
        page.body
    );
    assert!(
        page.body.contains("wamid.web.lost") && page.body.contains("Alguém aí? &lt;b&gt;"),
        "the body is shown, escaped: {}",
        page.body
    );
    assert!(!page.body.contains("No webhook was flagged."));

    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    assert_eq!(ana.get("/alerts").await.status, 403);
    h.finish().await;
}

#[tokio::test]
async fn the_workflows_page_shows_the_files_and_what_is_wrong_with_them() {
    let h = start().await;
    h.person("boss@acme.com", "admin").await;
    let mut boss = Browser::new(&h);
    boss.log_in("boss@acme.com", PASSWORD).await;
    let page = boss.get("/workflows").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("support.flow") && page.body.contains("new → doing → done"),
        "{}",
        page.body
    );
    std::fs::write(
        h.dir.join("support.flow"),
        FLOW.replace("flow new -> doing", "flow new -> doin"),
    )
    .expect("edit");
    let broken = boss.get("/workflows").await;
    assert!(
        broken.body.contains("unknown status `doin`"),
        "{}",
        broken.body
    );
    // The running workflow is untouched.
    assert!(broken.body.contains("new → doing → done"));
    // Reloading the broken files is refused with their diagnostics.
    let csrf = Browser::csrf(&broken);
    let refused = boss.post("/workflows/reload", &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("were not reloaded")
            && refused.body.contains("unknown status `doin`"),
        "{}",
        refused.body
    );
    assert_eq!(
        boss.post("/workflows/reload", &[]).await.status,
        403,
        "no form token"
    );
    // Fixed, with a new status: the reload runs it at once.
    std::fs::write(
        h.dir.join("support.flow"),
        FLOW.replace(
            "  status done done",
            "  status review active\n  status done done",
        )
        .replace("flow doing -> done", "flow doing -> review | done"),
    )
    .expect("edit");
    let done = boss.post("/workflows/reload", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("id=\"reloaded\""), "{}", done.body);
    assert!(
        done.body.contains("new → doing → review → done"),
        "{}",
        done.body
    );
    // Managers read the page; only admins reload.
    h.person("mia@acme.com", "manager").await;
    let mut mia = Browser::new(&h);
    mia.log_in("mia@acme.com", PASSWORD).await;
    let page = mia.get("/workflows").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("/workflows/reload"));
    let csrf = Browser::csrf(&page);
    assert_eq!(
        mia.post("/workflows/reload", &[("csrf", &csrf)])
            .await
            .status,
        403
    );
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    assert_eq!(ana.get("/workflows").await.status, 403);
    h.finish().await;
}

#[tokio::test]
async fn each_person_chooses_their_language() {
    let h = start().await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let home = ana.get("/").await;
    assert!(home.body.contains("Your boards"));
    let csrf = Browser::csrf(&home);
    assert_eq!(
        ana.post("/language", &[("csrf", &csrf), ("language", "klingon")])
            .await
            .status,
        422
    );
    assert_eq!(
        ana.post("/language", &[("csrf", &csrf), ("language", "pt-BR")])
            .await
            .status,
        303
    );
    let home = ana.get("/").await;
    assert!(
        home.body.contains("Seus quadros") && home.body.contains("lang=\"pt-BR\""),
        "{}",
        home.body
    );
    // Another person keeps theirs.
    let mut rafa = Browser::new(&h);
    rafa.log_in("rafa@acme.com", PASSWORD).await;
    assert!(rafa.get("/").await.body.contains("Your boards"));
    h.finish().await;
}

#[tokio::test]
async fn opening_a_card_tells_whatsapp_its_messages_were_read_once() {
    let h = start().await;
    h.customer_says("5511987650001", "Maria", "wamid.web.r1", "Oi")
        .await;
    h.customer_says("5511987650001", "Maria", "wamid.web.r2", "Alguém?")
        .await;
    h.settle().await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    assert_eq!(ana.get("/cards/c_support_1").await.status, 200);
    let fake = &h.fake;
    let marked = h
        .running
        .until(Duration::from_secs(20), || async {
            !fake.read_marks().is_empty()
        })
        .await;
    assert!(marked, "a read mark reached WhatsApp");
    // The newest message: WhatsApp marks the earlier ones with it.
    assert_eq!(fake.read_marks(), vec!["wamid.web.r2".to_string()]);
    // Opening it again sends nothing new.
    ana.get("/cards/c_support_1").await;
    h.customer_says("5511987650002", "Ana Cliente", "wamid.web.r3", "Oi")
        .await;
    h.settle().await;
    assert_eq!(fake.read_marks().len(), 1);
    h.finish().await;
}

#[tokio::test]
async fn in_the_demo_the_phone_simulator_reaches_a_card_and_the_reply_comes_back_read() {
    let db = switchboard_store::testing::TestDb::new(switchboard_store::Backend::Sqlite)
        .await
        .expect("db");
    let dir =
        std::env::temp_dir().join(switchboard_store::testing::unique_name("switchboard-demo"));
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::write(dir.join("support.flow"), common::FLOW).expect("flow");
    let mut config =
        switchboard_server::config::Config::for_tests(&db.url, &dir, "http://127.0.0.1:9/v25.0");
    config.demo = true;
    config.app_secrets = vec![switchboard_server::config::DEMO_SECRET.to_string()];
    let running = switchboard_server::start(config)
        .await
        .expect("demo starts");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let sent = http
        .post(format!("http://{}/demo/phone", running.addr))
        .form(&[
            ("to", "551140001000"),
            ("from", "5511987650001"),
            ("name", "Maria"),
            ("text", "Oi, tudo bem?"),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(sent.status(), 303);
    let fake = running.fake.clone().expect("the demo's fake WhatsApp");
    let replies = fake.wait_for_sends(1, Duration::from_secs(20)).await;
    assert_eq!(replies[0].body["text"]["body"], "Olá Maria!");
    let wamid = replies[0].wamid.clone().expect("accepted");
    let store = running.store().clone();
    let read =
        running
            .until(Duration::from_secs(30), || {
                let (store, wamid) = (store.clone(), wamid.clone());
                async move {
                    matches!(store.message_status(&wamid).await, Ok(Some((s, _))) if s == "read")
                }
            })
            .await;
    assert!(read, "the demo plays Meta's sent, delivered, read");
    let phone = http
        .get(format!(
            "http://{}/demo/phone?from=5511987650001",
            running.addr
        ))
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("page");
    assert!(
        phone.contains("Oi, tudo bem?") && phone.contains("Olá Maria!"),
        "{phone}"
    );
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    db.finish().await.expect("cleanup");
}

/// A form's path, its fields (besides the CSRF token) and the expected
/// status per person.
type PostRoute<'a> = (&'a str, &'a [(&'a str, &'a str)], [u16; 5]);

/// What each role gets on every page and form of the UI, for a card of its
/// own pipe and one of a pipe it may not see (`-` = logged out).
#[tokio::test]
async fn every_role_on_every_route_gets_what_it_may_and_nothing_more() {
    let flow = FLOW.replace(
        "team front { ana@acme.com }",
        "team front { ana@acme.com mia@acme.com }",
    );
    let h = Harness::start(&flow).await;
    for (email, role) in [
        ("ana@acme.com", "agent"),
        ("rafa@acme.com", "agent"),
        ("mia@acme.com", "manager"),
        ("root@acme.com", "admin"),
    ] {
        h.person(email, role).await;
    }
    h.customer_says("5511987650001", "Maria", "wamid.rr.1", "Oi")
        .await;
    let sales = switchboard_whatsapp::webhook::Metadata {
        phone_number_id: "106000000000077".into(),
        display_phone_number: "551140002000".into(),
    };
    h.post_signed(
        switchboard_whatsapp::webhook::text_message_body(
            &sales,
            "5511987650002",
            "João",
            "wamid.rr.2",
            1_790_000_000,
            "Quero comprar",
        )
        .as_bytes(),
    )
    .await;
    h.card_when(1, |_| true).await;
    assert!(
        h.running
            .until(Duration::from_secs(20), || {
                let store = h.running.store().clone();
                async move {
                    store
                        .card_by_number("sales", 1)
                        .await
                        .ok()
                        .flatten()
                        .is_some()
                }
            })
            .await,
        "the sales card exists"
    );
    // Expected status per route for: logged out, ana (support agent), rafa
    // (sales agent), mia (support manager), root (admin). A page someone may
    // not see is 404 (like one that does not exist); a page for managers
    // only is 403 for agents; logged out is sent to the log-in page (303).
    // Forms that act go through with 303; a move the flow refuses is 409.
    let gets: &[(&str, [u16; 5])] = &[
        ("/", [303, 200, 200, 200, 200]),
        ("/pipes/support", [303, 200, 404, 200, 200]),
        ("/pipes/sales", [303, 404, 200, 404, 200]),
        ("/pipes/nowhere", [303, 404, 404, 404, 404]),
        ("/cards/c_support_1", [303, 200, 404, 200, 200]),
        ("/cards/c_sales_1", [303, 404, 200, 404, 200]),
        (
            "/cards/c_sales_1/media/wamid.rr.2",
            [303, 404, 404, 404, 404],
        ),
        (
            "/cards/c_support_1/media/nothing",
            [303, 404, 404, 404, 404],
        ),
        ("/dashboard", [303, 403, 403, 200, 200]),
        ("/workflows", [303, 403, 403, 200, 200]),
        ("/demo/phone", [404, 404, 404, 404, 404]),
    ];
    let posts: &[PostRoute] = &[
        (
            "/cards/c_sales_1/reply",
            &[("text", "Olá")],
            [303, 404, 303, 404, 303],
        ),
        (
            "/cards/c_sales_1/move",
            &[("status", "won")],
            [303, 404, 303, 404, 303],
        ),
        ("/cards/c_sales_1/fields", &[], [303, 404, 303, 404, 303]),
        (
            "/cards/c_sales_1/template",
            &[("template", "hello"), ("language", "pt_BR"), ("params", "")],
            [303, 404, 303, 404, 303],
        ),
    ];
    let people = [
        "",
        "ana@acme.com",
        "rafa@acme.com",
        "mia@acme.com",
        "root@acme.com",
    ];
    let mut wrong = Vec::new();
    for (i, who) in people.iter().enumerate() {
        let mut b = Browser::new(&h);
        let csrf = if who.is_empty() {
            "no-session".to_string()
        } else {
            b.log_in(who, PASSWORD).await;
            Browser::csrf(&b.get("/").await)
        };
        for (path, expected) in gets {
            let got = b.get(path).await.status;
            if got != expected[i] {
                wrong.push(format!(
                    "GET {path} as {who:?}: {got}, expected {}",
                    expected[i]
                ));
            }
        }
        for (path, form, expected) in posts {
            let mut fields = vec![("csrf", csrf.as_str())];
            fields.extend_from_slice(form);
            let page = b.post(path, &fields).await;
            // rafa's move made the card `won`; the admin's asks for the
            // status it already has, which changes nothing (303).
            if page.status != expected[i] {
                wrong.push(format!(
                    "POST {path} as {who:?}: {}, expected {}",
                    page.status, expected[i]
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    h.finish().await;
}

#[tokio::test]
async fn a_long_column_pages_through_all_its_cards() {
    let h = start().await;
    for i in 1..=55 {
        h.customer_says(
            &format!("55119876{i:05}"),
            &format!("Cliente {i}"),
            &format!("wamid.page.{i}"),
            "Oi",
        )
        .await;
    }
    h.card_when(55, |_| true).await;
    let mut ana = Browser::new(&h);
    ana.log_in("ana@acme.com", PASSWORD).await;
    let board = ana.get("/pipes/support").await;
    let on = |page: &Page| page.body.matches("class=\"card ").count();
    assert_eq!(on(&board), 50);
    assert!(board.body.contains("<span class=\"count\">55</span>"));
    let at = board
        .body
        .find("class=\"next\" href=\"")
        .expect("a next link")
        + 19;
    let next = board.body[at..]
        .split('"')
        .next()
        .expect("href")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/");
    assert!(
        next.starts_with("/pipes/support?column=new&after="),
        "{next}"
    );
    let page = ana.get(&next).await;
    assert_eq!(on(&page), 5);
    assert!(page.body.contains("Cliente 55") && !page.body.contains("Cliente 1<"));
    assert!(page.body.contains("Back to the first cards") && !page.body.contains("class=\"next\""));
    // Filtered, the column says there are more than it shows.
    let unassigned = ana.get("/pipes/support?show=unassigned").await;
    assert!(
        unassigned.body.contains("<span class=\"count\">50+</span>"),
        "{}",
        unassigned.body
    );
    h.finish().await;
}

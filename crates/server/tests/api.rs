//! The REST API over real HTTP with API tokens: rights per pipe (404, never
//! a leak), an agent's reply, moves the flow forbids (409 with the reason),
//! typed fields (422), search and paging, bad bodies (400).

mod common;

use common::Harness;
use serde_json::{json, Value};
use std::time::Duration;

const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  field priority: choice(low, normal, high) = normal
  status new open initial
  status doing active
  status done done
  flow new -> doing
  flow doing -> done
  team front { ana@acme.com }
  view high "High priority" {
    where priority = high
    sort by number desc
  }
}

pipe sales "Sales" {
  number "+55 11 4000-2000"
  status lead open initial
  status won done
  flow lead -> won
  team closers { rafa@acme.com }
}
"#;

struct Api {
    h: Harness,
    admin: String,
    ana: String,
    rafa: String,
}

async fn token(h: &Harness, email: &str, role: &str) -> String {
    h.person(email, role).await;
    switchboard_server::accounts::create_token(h.running.store(), email, "test")
        .await
        .expect("token created")
}

impl Api {
    async fn start() -> Api {
        let h = Harness::start(FLOW).await;
        let admin = token(&h, "boss@acme.com", "admin").await;
        let ana = token(&h, "ana@acme.com", "agent").await;
        let rafa = token(&h, "rafa@acme.com", "agent").await;
        Api {
            h,
            admin,
            ana,
            rafa,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self
            .h
            .http
            .request(method.parse().expect("a method"), self.h.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let answer = r.send().await.expect("the server answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// Maria writes to support: card c_support_1.
    async fn maria_writes(&self) {
        self.h
            .customer_says(
                "5511987650001",
                "Maria",
                "wamid.api.1",
                "Oi, o pedido 8812 não chegou",
            )
            .await;
        self.h.card_when(1, |_| true).await;
    }
}

#[tokio::test]
async fn without_a_valid_token_every_route_is_401() {
    let api = Api::start().await;
    let (status, body) = api.call("GET", "/api/pipes", "sbt_nonsense", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let none = api
        .h
        .http
        .get(api.h.url("/api/cards/c_support_1"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    api.h.finish().await;
}

#[tokio::test]
async fn each_agent_sees_only_the_pipes_their_teams_belong_to() {
    let api = Api::start().await;
    let names = |v: &Value| -> Vec<String> {
        v["pipes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(&api.call("GET", "/api/pipes", &api.ana, None).await.1),
        vec!["support"]
    );
    assert_eq!(
        names(&api.call("GET", "/api/pipes", &api.rafa, None).await.1),
        vec!["sales"]
    );
    assert_eq!(
        names(&api.call("GET", "/api/pipes", &api.admin, None).await.1),
        vec!["support", "sales"]
    );
    let (_, pipes) = api.call("GET", "/api/pipes", &api.ana, None).await;
    assert_eq!(
        pipes["pipes"][0]["statuses"][0],
        json!({"name": "new", "kind": "open", "initial": true, "final": false})
    );
    api.h.finish().await;
}

#[tokio::test]
async fn an_agent_of_another_pipe_cannot_reach_its_cards_in_any_way() {
    let api = Api::start().await;
    api.maria_writes().await;
    assert_eq!(
        api.call("GET", "/api/cards/c_support_1", &api.ana, None)
            .await
            .0,
        200
    );
    for (method, path, body) in [
        ("GET", "/api/cards/c_support_1", None),
        ("GET", "/api/pipes/support/cards", None),
        ("GET", "/api/pipes/support/cards?q=pedido", None),
        (
            "POST",
            "/api/cards/c_support_1/move",
            Some(r#"{"status":"doing"}"#),
        ),
        (
            "POST",
            "/api/cards/c_support_1/reply",
            Some(r#"{"text":"oi"}"#),
        ),
    ] {
        let (status, body) = api.call(method, path, &api.rafa, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(!body.to_string().contains("Maria"), "nothing leaks: {body}");
    }
    // The same answer as for a card that does not exist.
    let (_, missing) = api
        .call("GET", "/api/cards/c_support_99", &api.rafa, None)
        .await;
    assert_eq!(missing["error"]["code"], "not_found");
    api.h.finish().await;
}

#[tokio::test]
async fn an_agents_reply_reaches_whatsapp_and_turns_the_card_green() {
    let api = Api::start().await;
    api.maria_writes().await;
    let (status, card) = api
        .call(
            "POST",
            "/api/cards/c_support_1/reply",
            &api.ana,
            Some(r#"{"text":"Olá Maria, vou verificar."}"#),
        )
        .await;
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["last_responder"], "team");
    let history: Vec<String> = card["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["what"].as_str().unwrap().to_string())
        .collect();
    assert!(history.contains(&"reply sent".to_string()), "{history:?}");
    let sent = api.h.fake.wait_for_sends(1, Duration::from_secs(20)).await;
    assert_eq!(sent[0].body["text"]["body"], "Olá Maria, vou verificar.");
    let (status, body) = api
        .call(
            "POST",
            "/api/cards/c_support_1/reply",
            &api.ana,
            Some(r#"{"text":"  "}"#),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    api.h.finish().await;
}

#[tokio::test]
async fn a_move_the_flow_forbids_is_409_with_the_reason() {
    let api = Api::start().await;
    api.maria_writes().await;
    let (status, body) = api
        .call(
            "POST",
            "/api/cards/c_support_1/move",
            &api.ana,
            Some(r#"{"status":"done"}"#),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["error"]["message"],
        "the flow does not allow `new` -> `done`; from `new` a card can go to: doing"
    );
    let (status, card) = api
        .call(
            "POST",
            "/api/cards/c_support_1/move",
            &api.ana,
            Some(r#"{"status":"doing"}"#),
        )
        .await;
    assert_eq!((status, card["status"].as_str()), (200, Some("doing")));
    api.h.finish().await;
}

#[tokio::test]
async fn fields_are_typed_and_unknown_ones_named() {
    let api = Api::start().await;
    api.maria_writes().await;
    let (status, body) = api
        .call(
            "PATCH",
            "/api/cards/c_support_1/fields",
            &api.ana,
            Some(r#"{"colour":"red"}"#),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no field `colour`; its fields are priority"),
        "{body}"
    );
    let (status, body) = api
        .call(
            "PATCH",
            "/api/cards/c_support_1/fields",
            &api.ana,
            Some(r#"{"priority":"urgent"}"#),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, card) = api
        .call(
            "PATCH",
            "/api/cards/c_support_1/fields",
            &api.ana,
            Some(r#"{"priority":"high"}"#),
        )
        .await;
    assert_eq!(
        (status, card["fields"]["priority"].as_str()),
        (200, Some("high"))
    );
    api.h.finish().await;
}

#[tokio::test]
async fn bad_bodies_and_filters_are_one_clear_sentence() {
    let api = Api::start().await;
    api.maria_writes().await;
    let (status, body) = api
        .call(
            "POST",
            "/api/cards/c_support_1/move",
            &api.ana,
            Some("{status: doing"),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_json"))
    );
    let (status, body) = api
        .call(
            "POST",
            "/api/cards/c_support_1/assign",
            &api.ana,
            Some("{}"),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = api
        .call("GET", "/api/pipes/support/cards?limit=9999", &api.ana, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_limit"))
    );
    api.h.finish().await;
}

#[tokio::test]
async fn cards_are_found_by_words_and_paged() {
    let api = Api::start().await;
    api.maria_writes().await;
    api.h
        .customer_says(
            "5511987650002",
            "Ana Cliente",
            "wamid.api.2",
            "quero cancelar",
        )
        .await;
    api.h.card_when(2, |_| true).await;
    let (_, found) = api
        .call(
            "GET",
            "/api/pipes/support/cards?q=pedido%208812",
            &api.ana,
            None,
        )
        .await;
    let ids: Vec<&str> = found["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["c_support_1"]);
    let (_, page) = api
        .call("GET", "/api/pipes/support/cards?limit=1", &api.ana, None)
        .await;
    assert_eq!(page["cards"].as_array().unwrap().len(), 1);
    let next = page["next"].as_str().expect("a next page");
    let (_, second) = api
        .call(
            "GET",
            &format!("/api/pipes/support/cards?limit=1&cursor={next}"),
            &api.ana,
            None,
        )
        .await;
    assert_eq!(second["cards"][0]["id"], "c_support_2");
    let (_, card) = api
        .call("GET", "/api/cards/c_support_1", &api.ana, None)
        .await;
    assert_eq!(card["messages"][0]["direction"], "in");
    assert_eq!(
        card["messages"][0]["raw"]["text"]["body"],
        "Oi, o pedido 8812 não chegou"
    );
    api.h.finish().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let api = Api::start().await;
    let doc: Value = api
        .h
        .http
        .get(api.h.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/pipes",
        "/api/pipes/{pipe}/cards",
        "/api/cards/{id}",
        "/api/cards/{id}/reply",
        "/api/cards/{id}/move",
        "/api/cards/{id}/assign",
        "/api/cards/{id}/fields",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    api.h.finish().await;
}

#[tokio::test]
async fn the_workflows_views_are_saved_filters() {
    let api = Api::start().await;
    api.maria_writes().await;
    api.h
        .customer_says("5511987650002", "Ana Cliente", "wamid.api.v", "oi")
        .await;
    api.h.card_when(2, |_| true).await;
    for id in ["c_support_1", "c_support_2"] {
        let (status, _) = api
            .call(
                "PATCH",
                &format!("/api/cards/{id}/fields"),
                &api.ana,
                Some(r#"{"priority":"high"}"#),
            )
            .await;
        assert_eq!(status, 200);
    }
    api.h
        .customer_says("5511987650003", "Outro", "wamid.api.w", "oi")
        .await;
    api.h.card_when(3, |_| true).await;
    let (_, shown) = api
        .call("GET", "/api/pipes/support/cards?view=high", &api.ana, None)
        .await;
    let ids: Vec<&str> = shown["cards"]
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        vec!["c_support_2", "c_support_1"],
        "the view's order: number, descending"
    );
    let (status, body) = api
        .call(
            "GET",
            "/api/pipes/support/cards?view=urgent",
            &api.ana,
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "pipe `support` has no view `urgent`; its views are `high`"
    );
    api.h.finish().await;
}

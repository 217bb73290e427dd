//! A server on a real port, a fake Graph API, a fresh database and a
//! workflow folder per test.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;
use switchboard_server::config::Config;
use switchboard_server::Running;
use switchboard_store::testing::{unique_name, TestDb};
use switchboard_store::{Backend, CardRow};
use switchboard_whatsapp::fake::FakeGraph;
use switchboard_whatsapp::signature::sign;
use switchboard_whatsapp::webhook::{status_body, text_message_body, Metadata};

/// The number the test workflow is fed by.
pub const NUMBER: &str = "551140001000";
/// Its phone number id.
pub const NUMBER_ID: &str = "106000000000042";

/// A workflow that greets every new card.
pub const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  status new open initial
  status doing active
  status waiting paused
  status done done
  flow new -> doing | waiting | done
  flow doing -> waiting | done
  flow waiting -> doing | done
  rule greet on card.created {
    reply "Olá {{ contact.name }}!"
  }
}
"#;

pub struct Harness {
    pub running: Running,
    pub fake: FakeGraph,
    pub http: reqwest::Client,
    pub dir: PathBuf,
    pub db: TestDb,
    pub config: Config,
}

pub fn metadata() -> Metadata {
    Metadata {
        phone_number_id: NUMBER_ID.into(),
        display_phone_number: NUMBER.into(),
    }
}

impl Harness {
    pub async fn start(flow: &str) -> Harness {
        Harness::start_on(flow, Backend::Sqlite).await
    }

    pub async fn start_on(flow: &str, backend: Backend) -> Harness {
        let db = TestDb::new(backend).await.expect("a test database");
        let dir = std::env::temp_dir().join(unique_name("switchboard-flows"));
        std::fs::create_dir_all(&dir).expect("workflow folder");
        std::fs::write(dir.join("support.flow"), flow).expect("workflow file");
        let fake = FakeGraph::start().await.expect("fake graph");
        let config = Config::for_tests(&db.url, &dir, &fake.base_url());
        let running = switchboard_server::start(config.clone())
            .await
            .expect("server starts");
        Harness {
            running,
            fake,
            http: reqwest::Client::new(),
            dir,
            db,
            config,
        }
    }

    /// Stops the server and starts a new one on the same database and folder.
    pub async fn restart(self) -> Harness {
        let Harness {
            running,
            fake,
            http,
            dir,
            db,
            config,
        } = self;
        running.stop().await;
        let running = switchboard_server::start(config.clone())
            .await
            .expect("server restarts");
        Harness {
            running,
            fake,
            http,
            dir,
            db,
            config,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    /// POSTs a body signed with the test secret.
    pub async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        self.http
            .post(self.url("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign("test-secret", body))
            .body(body.to_vec())
            .send()
            .await
            .expect("the server answers")
    }

    /// A customer's text message, as Meta would send it; returns the HTTP status.
    pub async fn customer_says(&self, from: &str, name: &str, wamid: &str, text: &str) -> u16 {
        let body = text_message_body(&metadata(), from, name, wamid, 1_790_000_000, text);
        self.post_signed(body.as_bytes()).await.status().as_u16()
    }

    /// A customer's text message to +55 21 3000-5000, a number no pipe is
    /// fed by (number id 999).
    pub async fn customer_writes_to_an_unknown_number(&self, wamid: &str, text: &str) -> u16 {
        let other = Metadata {
            phone_number_id: "999".into(),
            display_phone_number: "552130005000".into(),
        };
        let body = text_message_body(&other, "5511987650001", "Maria", wamid, 1_790_000_000, text);
        self.post_signed(body.as_bytes()).await.status().as_u16()
    }

    /// A delivery status of one of our messages.
    pub async fn status(&self, wamid: &str, status: &str, callback: Option<&str>) -> u16 {
        let body = status_body(
            &metadata(),
            wamid,
            status,
            1_790_000_100,
            "5511987650001",
            callback,
        );
        self.post_signed(body.as_bytes()).await.status().as_u16()
    }

    /// Waits until every stored webhook went through the engine.
    pub async fn settle(&self) {
        let store = self.running.store().clone();
        let done = self
            .running
            .until(Duration::from_secs(20), || {
                let store = store.clone();
                async move { store.inbox_backlog().await.map(|n| n == 0).unwrap_or(false) }
            })
            .await;
        assert!(done, "the engine did not take the inbox in time");
    }

    /// Waits until a condition on the card numbered `n` holds; returns the card.
    pub async fn card_when(&self, n: i64, check: impl Fn(&CardRow) -> bool) -> CardRow {
        let store = self.running.store().clone();
        let check = &check;
        let ok = self
            .running
            .until(Duration::from_secs(20), || {
                let store = store.clone();
                async move {
                    matches!(store.card_by_number("support", n).await, Ok(Some(c)) if check(&c))
                }
            })
            .await;
        let card = self
            .running
            .store()
            .card_by_number("support", n)
            .await
            .expect("query")
            .expect("the card exists");
        assert!(ok, "card {n} never reached the expected state: {card:?}");
        card
    }

    pub async fn finish(self) {
        self.running.stop().await;
        self.fake.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
        self.db.finish().await.expect("cleanup");
    }
}

/// The password of everyone [`Harness::person`] adds.
pub const PASSWORD: &str = "long enough password";

impl Harness {
    /// Adds someone with a role, who logs in with [`PASSWORD`].
    pub async fn person(&self, email: &str, role: &str) {
        switchboard_server::accounts::add_user(
            self.running.store(),
            email,
            "Someone",
            role,
            Some(PASSWORD),
        )
        .await
        .expect("user added");
    }
}

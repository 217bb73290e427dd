//! Page benchmark: a pipe with 100,000 cards and 1,000,000 messages on
//! SQLite, and the server time of what agents and managers open all day — a
//! board, a card page, the dashboard, a search — beside `/healthz` (one HTTP
//! round trip and one trivial query) measured in the same run.
//!
//! `cargo bench -p switchboard-server --bench pages`. Settings (environment):
//! `BENCH_CARDS` (100000), `BENCH_MESSAGES_PER_CARD` (10), `BENCH_REQUESTS`
//! (30 per page), `BENCH_DAYS` (365: the cards are spread over that many
//! days), `BENCH_KEEP` (keep the database and print where). Target: under
//! 100 ms each. Nothing is asserted.

// A benchmark, not a test: a setup failure should stop it loudly.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};
use switchboard_server::config::Config;
use switchboard_store::testing::{unique_name, TestDb};
use switchboard_store::{Backend, Batch, CardRow, HistoryRow, MessageRow, SearchRow};

/// mimalloc: fewer cycles in allocation than glibc's malloc under the
/// server's many small, short-lived, cross-thread allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  field priority: choice(low, normal, high) = normal shown
  field topic: choice(billing, delivery, other) = other shown
  status new open initial
  status doing active
  status waiting paused
  status done done
  flow new -> doing | waiting | done
  flow doing -> waiting | done
  flow waiting -> doing | done
  team front { ana@acme.com bruno@acme.com }
}
"#;

const WORDS: &[&str] = &[
    "pedido",
    "reembolso",
    "entrega",
    "troca",
    "boleto",
    "cartão",
    "atraso",
    "endereço",
    "nota",
    "produto",
];

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let cards = env_or("BENCH_CARDS", 100_000);
    let per_card = env_or("BENCH_MESSAGES_PER_CARD", 10);
    let requests = env_or("BENCH_REQUESTS", 30);
    let days = env_or("BENCH_DAYS", 365).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let db = TestDb::new(Backend::Sqlite).await.unwrap();
        let store = db.store.clone();
        let filling = Instant::now();
        let now = switchboard_server::now_ms();
        let statuses = ["new", "doing", "waiting", "done"];
        let chunk = 1_000;
        for start in (0..cards).step_by(chunk) {
            let mut batch = Batch::default();
            for id in start..(start + chunk).min(cards) {
                // Spread over a year, the newest last; `BENCH_DAYS` narrows it
                // (a busy pipe: all of them within the dashboard's 30 days).
                let span = days as i64 * 86_400_000;
                let created = now - ((cards - id) as i64 * span / cards as i64) - 60_000;
                let status = statuses[id % 4];
                let contact = format!("5511{:09}", id);
                let view = serde_json::json!({
                    "id": format!("c_support_{}", id + 1), "number": id + 1, "pipe": "support", "status": status,
                    "assignee": if id % 3 == 0 { None } else { Some("ana@acme.com") }, "team": "front",
                    "contact": { "wa_id": contact, "name": format!("Cliente {id}"), "phone": format!("+{contact}") },
                    "fields": { "priority": "normal", "topic": "other" },
                    "sla": { "kind": "first_response", "state": "ok", "due_at": null },
                    "last_responder": if id % 2 == 0 { "team" } else { "customer" },
                    "window_closes_at": null, "template_needed": false,
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                });
                batch.cards.push(CardRow {
                    id: id as i64,
                    pipe: "support".into(),
                    number: id as i64 + 1,
                    contact: contact.clone(),
                    status: status.into(),
                    open: status != "done",
                    assignee: (id % 3 != 0).then(|| "ana@acme.com".to_string()),
                    team: Some("front".into()),
                    sla_state: if id % 50 == 0 { "breached" } else { "ok" }.into(),
                    sla_due_at: Some(created + 900_000),
                    last_responder: Some(if id % 2 == 0 { "team" } else { "customer" }.into()),
                    template_needed: false,
                    preview: "Oi, meu pedido ainda não chegou".into(),
                    view: view.to_string(),
                    created_at: created,
                    updated_at: created + 60_000,
                    // The team's first reply is the card's second message.
                    first_reply_at: (per_card > 1).then_some(created + 60_000),
                    closed_at: (status == "done").then_some(created + 3_600_000),
                });
                for k in 0..per_card {
                    let inbound = k % 2 == 0;
                    let text = format!("{} {} número {}", WORDS[(id + k) % WORDS.len()], WORDS[(id * 7 + k) % WORDS.len()], id * 10 + k);
                    batch.messages.push(MessageRow {
                        card_id: id as i64,
                        key: if inbound { format!("wamid.{id}.{k}") } else { format!("out-{}-{k}", id + 1) },
                        wamid: inbound.then(|| format!("wamid.{id}.{k}")),
                        direction: if inbound { "in" } else { "out" }.into(),
                        kind: "text".into(),
                        text: Some(text.clone()),
                        author: (!inbound).then(|| "ana@acme.com".to_string()),
                        status: (!inbound).then(|| "read".to_string()),
                        at: created + k as i64 * 60_000,
                        wa_timestamp: None,
                        raw: Some(format!("{{\"type\":\"text\",\"text\":{{\"body\":\"{text}\"}}}}")),
                    });
                    batch.search.push(SearchRow { card_id: id as i64, pipe: "support".into(), body: text });
                }
                for what in ["opened in `new`", "assigned to ana@acme.com"] {
                    batch.history.push(HistoryRow {
                        card_id: id as i64,
                        at: created,
                        what: what.into(),
                        cause: "{\"by\":\"customer\"}".into(),
                    });
                }
            }
            store.commit(batch).await.unwrap();
        }
        eprintln!("[pages] filled {cards} cards and {} messages in {:.1} s", cards * per_card, filling.elapsed().as_secs_f64());

        // Log in the way the browser does: a session whose secret we know.
        store.upsert_user("boss@acme.com", "Boss", "admin", None, now).await.unwrap();
        let boss = store.user_by_email("boss@acme.com").await.unwrap().unwrap();
        let secret = "sbs_bench";
        store
            .create_session(&switchboard_server::accounts::secret_hash(secret), boss.id, "csrf", now + 3_600_000, now)
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(unique_name("switchboard-pages"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("support.flow"), FLOW).unwrap();
        let running = switchboard_server::start(Config::for_tests(&db.url, &dir, "http://127.0.0.1:9/v25.0")).await.unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://{}", running.addr);
        let middle = cards / 2;
        let pages = [
            ("baseline: /healthz", "/healthz".to_string()),
            ("board", "/pipes/support".to_string()),
            ("board, unassigned", "/pipes/support?show=unassigned".to_string()),
            ("card page", format!("/cards/c_support_{middle}")),
            ("dashboard", "/dashboard".to_string()),
            ("search (board)", "/pipes/support?q=reembolso%20entrega".to_string()),
            ("search (API)", "/api/pipes/support/cards?q=boleto&limit=100".to_string()),
        ];
        let token = switchboard_server::accounts::create_token(&store, "boss@acme.com", "bench").await.unwrap();
        println!(
            "\n{cards} cards opened over {days} days, {} messages, SQLite; {requests} requests each after 3 warm-up requests\n",
            cards * per_card
        );
        println!("| page | median ms | p90 ms | bytes |");
        println!("| --- | --: | --: | --: |");
        for (name, path) in pages {
            let mut times = Vec::new();
            let mut bytes = 0;
            for i in 0..(requests + 3) {
                let started = Instant::now();
                let answer = http
                    .get(format!("{base}{path}"))
                    .header("cookie", format!("sb_session={secret}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert!(answer.status().is_success(), "{path}: {}", answer.status());
                bytes = answer.bytes().await.unwrap().len();
                if i >= 3 {
                    times.push(started.elapsed());
                }
            }
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
            println!("| {name} | {:.1} | {:.1} | {bytes} |", ms(times[times.len() / 2]), ms(p90));
        }
        println!("\ntarget: under 100 ms each (server time; these include one loopback HTTP round trip, see the baseline).");
        running.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
        if std::env::var("BENCH_KEEP").is_ok() {
            eprintln!("[pages] kept the database: {}", db.url);
        } else {
            db.finish().await.unwrap();
        }
    });
}

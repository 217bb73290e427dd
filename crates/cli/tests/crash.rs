//! The crash test: under a steady stream of signed webhooks the server is
//! killed with SIGKILL and started again. Every webhook that was answered
//! 200 must end on its card exactly once, and every queued reply must be
//! sent. A reply is sent twice only when the kill fell between the request
//! to WhatsApp and its record; such a message must say it is uncertain.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;
use switchboard_store::Store;
use switchboard_whatsapp::fake::FakeGraph;
use switchboard_whatsapp::signature::sign;
use switchboard_whatsapp::webhook::{text_message_body, Metadata};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const FLOW: &str = r#"
pipe support "Support" {
  number "+55 11 4000-1000"
  status new open initial
  status done done
  flow new -> done
  rule greet on card.created {
    reply "Olá {{ contact.name }}!"
  }
}
"#;

struct Server {
    child: Child,
    addr: String,
}

/// Starts `switchboard serve` and waits for the line that says where it listens.
async fn serve(dir: &std::path::Path, db: &str, api: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .current_dir(dir)
        .env("SWITCHBOARD_DATABASE_URL", db)
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_WORKFLOWS", dir.join("workflows"))
        .env("WHATSAPP_APP_SECRET", "crash-secret")
        .env("WHATSAPP_VERIFY_TOKEN", "crash-token")
        .env("WHATSAPP_ACCESS_TOKEN", "crash-access")
        .env("WHATSAPP_API_BASE", api)
        .env("SWITCHBOARD_SEND_CLAIM_SECS", "1")
        .env("SWITCHBOARD_UNCERTAIN_QUIET_SECS", "1")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the server says where it listens in time")
            .expect("stderr")
            .expect("the server printed a line before exiting");
        if let Some(a) = line.strip_prefix("Switchboard is listening on http://") {
            break a.trim().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, addr }
}

fn meta() -> Metadata {
    Metadata {
        phone_number_id: "106000000000042".into(),
        display_phone_number: "551140001000".into(),
    }
}

/// Sends webhook `i`; true when it was answered 200.
async fn send(http: &reqwest::Client, addr: &str, i: u64) -> bool {
    let body = text_message_body(
        &meta(),
        &format!("55119{i:08}"),
        &format!("Cliente {i}"),
        &format!("wamid.crash.{i}"),
        1_790_000_000 + i as i64,
        "Oi",
    );
    let answer = http
        .post(format!("http://{addr}/webhooks/whatsapp"))
        .header("x-hub-signature-256", sign("crash-secret", body.as_bytes()))
        .body(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    matches!(answer, Ok(r) if r.status() == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_webhook_and_no_reply() {
    let dir = std::env::temp_dir().join(format!("switchboard-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(dir.join("workflows/support.flow"), FLOW).unwrap();
    let db = format!("sqlite://{}", dir.join("crash.db").display());
    let fake = FakeGraph::start().await.unwrap();
    let http = reqwest::Client::new();

    let mut server = serve(&dir, &db, &fake.base_url()).await;
    let mut acked = BTreeSet::new();
    // A steady stream from a writer task; SIGKILL falls while it flows
    // (and while greetings are being sent).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = {
        let (http, addr) = (http.clone(), server.addr.clone());
        tokio::spawn(async move {
            for i in 1..400 {
                if send(&http, &addr, i).await && tx.send(i).is_err() {
                    break;
                }
            }
        })
    };
    while acked.len() < 150 {
        match rx.recv().await {
            Some(i) => {
                acked.insert(i);
            }
            None => break,
        }
    }
    server.child.start_kill().expect("SIGKILL");
    server.child.wait().await.unwrap();
    writer.await.unwrap();
    while let Ok(i) = rx.try_recv() {
        acked.insert(i);
    }

    // Back up: the same database, more traffic.
    let server = serve(&dir, &db, &fake.base_url()).await;
    for j in 2_000..2_050_u64 {
        if send(&http, &server.addr, j).await {
            acked.insert(j);
        }
    }

    // Every acknowledged webhook ends with a greeting sent to its sender.
    let expected: BTreeSet<String> = acked.iter().map(|i| format!("55119{i:08}")).collect();
    let mut want = expected.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let sent = loop {
        let sent = fake.wait_for_sends(want, Duration::from_secs(30)).await;
        let to: BTreeSet<String> = sent
            .iter()
            .filter(|s| s.wamid.is_some())
            .map(|s| s.body["to"].as_str().unwrap_or("").to_string())
            .collect();
        if expected.is_subset(&to) || tokio::time::Instant::now() > deadline {
            break sent;
        }
        want = sent.len() + 1;
    };

    // Each acknowledged message is on exactly one card, exactly once.
    let store = Store::connect(&db).await.unwrap();
    let mut on_cards: BTreeMap<String, usize> = BTreeMap::new();
    let mut uncertain = BTreeSet::new();
    for n in 1..=(acked.len() as i64 + 10) {
        let Some(card) = store.card_by_number("support", n).await.unwrap() else {
            continue;
        };
        for m in store.messages(card.id).await.unwrap() {
            if m.direction == "in" {
                *on_cards.entry(m.key.clone()).or_default() += 1;
            } else if m
                .status_reason
                .as_deref()
                .is_some_and(|r| r.contains("twice"))
            {
                uncertain.insert(card.contact.clone());
            }
        }
    }
    for i in &acked {
        assert_eq!(
            on_cards.get(&format!("wamid.crash.{i}")),
            Some(&1),
            "webhook {i} answered 200 is on its card once"
        );
    }
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for s in sent.iter().filter(|s| s.wamid.is_some()) {
        *per_recipient
            .entry(s.body["to"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    for to in &expected {
        assert!(
            per_recipient.contains_key(to),
            "the greeting to {to} was sent"
        );
    }
    let doubles: Vec<&String> = per_recipient
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, _)| t)
        .collect();
    for d in &doubles {
        assert!(
            uncertain.contains(*d),
            "the double to {d} is marked uncertain on its card"
        );
    }
    eprintln!(
        "crash test: {} webhooks answered 200, all on their cards once; {} greetings sent; {} sent twice (kill between the request to WhatsApp and its record)",
        acked.len(),
        per_recipient.len(),
        doubles.len()
    );

    // A graceful stop (SIGTERM) drains and exits 0.
    let pid = server.child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = server.child;
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops in time")
        .unwrap();
    assert!(exit.success(), "SIGTERM ends with exit 0: {exit:?}");
    store.close().await;
    fake.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

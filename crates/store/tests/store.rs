//! The storage suite: every test runs once on SQLite and once on PostgreSQL.

use switchboard_store::testing::TestDb;
use switchboard_store::*;

/// Runs a test body against both databases.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn on_sqlite() {
                let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
                ($body)(db.store.clone()).await;
                db.finish().await.expect("cleanup");
            }
            #[tokio::test]
            async fn on_postgres() {
                let db = TestDb::new(Backend::Postgres)
                    .await
                    .expect("postgres (see SWITCHBOARD_TEST_POSTGRES)");
                ($body)(db.store.clone()).await;
                db.finish().await.expect("cleanup");
            }
        }
    };
}

fn card(id: i64, number: i64, status: &str) -> CardRow {
    CardRow {
        id,
        pipe: "support".into(),
        number,
        contact: "5511987650001".into(),
        status: status.into(),
        open: true,
        assignee: Some("ana@acme.com".into()),
        team: Some("frontline".into()),
        sla_state: "ok".into(),
        sla_due_at: Some(1_000),
        last_responder: Some("customer".into()),
        template_needed: false,
        preview: "Oi".into(),
        view: "{}".into(),
        created_at: 1,
        updated_at: 2,
        first_reply_at: None,
        closed_at: None,
    }
}

fn message(card_id: i64, key: &str, wamid: Option<&str>) -> MessageRow {
    MessageRow {
        card_id,
        key: key.into(),
        wamid: wamid.map(Into::into),
        direction: if wamid.is_some() { "in" } else { "out" }.into(),
        kind: "text".into(),
        text: Some("Quero um reembolso".into()),
        author: None,
        status: None,
        at: 5,
        wa_timestamp: Some(5),
        raw: Some("{}".into()),
    }
}

both!(
    an_identical_webhook_body_is_stored_once,
    |store: Store| async move {
        let item = InboxItem {
            body: b"{\"a\":1}".to_vec(),
            received_at: 1,
        };
        let other = InboxItem {
            body: b"{\"a\":2}".to_vec(),
            received_at: 2,
        };
        assert_eq!(store.append_inbox(&[item.clone(), other]).await.unwrap(), 2);
        assert_eq!(store.append_inbox(&[item]).await.unwrap(), 0);
        let pending = store.pending_inbox(10).await.unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].body, b"{\"a\":1}");
        assert_eq!(store.inbox_backlog().await.unwrap(), 2);
    }
);

both!(
    a_batch_is_committed_whole_and_consumes_its_inbox_rows,
    |store: Store| async move {
        store
            .append_inbox(&[InboxItem {
                body: b"one".to_vec(),
                received_at: 1,
            }])
            .await
            .unwrap();
        let inbox = store.pending_inbox(10).await.unwrap();
        let batch = Batch {
            events: vec![(10, "{\"tick\":10}".into())],
            cards: vec![card(0, 1, "new")],
            messages: vec![message(0, "wamid.A", Some("wamid.A"))],
            history: vec![HistoryRow {
                card_id: 0,
                at: 10,
                what: "opened in `new`".into(),
                cause: "{\"by\":\"customer\"}".into(),
            }],
            contacts: vec![ContactRow {
                wa_id: "5511987650001".into(),
                user_id: Some("BR.1".into()),
                username: None,
                name: "Maria".into(),
                phone: "+5511987650001".into(),
                updated_at: 10,
            }],
            outbox: vec![],
            search: vec![SearchRow {
                card_id: 0,
                pipe: "support".into(),
                body: "Maria quero um reembolso".into(),
            }],
            alerts: vec![],
            inbox_done: vec![(inbox[0].id, Some("flagged".into()))],
            // Made from a webhook body: need not wait for the disk.
            redoable: true,
        };
        store.commit(batch).await.unwrap();
        assert_eq!(store.inbox_backlog().await.unwrap(), 0);
        assert_eq!(store.flagged_inbox(10).await.unwrap()[0].1, "flagged");
        assert_eq!(store.card(0).await.unwrap().unwrap().status, "new");
        assert_eq!(store.messages(0).await.unwrap().len(), 1);
        assert_eq!(store.history(0).await.unwrap()[0].what, "opened in `new`");
        assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);

        // A second batch moves the card: the row is updated, not duplicated.
        let mut moved = card(0, 1, "in_progress");
        moved.updated_at = 20;
        store
            .commit(Batch {
                cards: vec![moved],
                ..Batch::default()
            })
            .await
            .unwrap();
        let c = store.card_by_number("support", 1).await.unwrap().unwrap();
        assert_eq!((c.status.as_str(), c.updated_at), ("in_progress", 20));
    }
);

both!(
    every_value_comes_back_as_it_was_written,
    |store: Store| async move {
        // Bytes that are not UTF-8, text with JSON's and SQL's special
        // characters, absent values, the largest integers, many rows in order.
        let body: Vec<u8> = vec![0, 0xff, b'"', b'\\', 0xc3, 0x28, b'\n'];
        store
            .append_inbox(&[InboxItem {
                body: body.clone(),
                received_at: i64::MAX,
            }])
            .await
            .unwrap();
        let pending = store.pending_inbox(10).await.unwrap();
        assert_eq!(
            (pending[0].body.clone(), pending[0].received_at),
            (body, i64::MAX)
        );

        let text = "\"quoted\" \\ back\\slash 'single' \u{0001}\ttab\nline 🎉 ç $1 ?";
        let mut m = message(0, "wamid.B", Some("wamid.B"));
        m.text = Some(text.into());
        m.author = None;
        m.wa_timestamp = None;
        m.at = i64::MIN;
        store
            .commit(Batch {
                events: (0..1_500).map(|i| (i, format!("{{\"n\":{i}}}"))).collect(),
                cards: vec![card(0, 1, "new")],
                messages: vec![m],
                ..Batch::default()
            })
            .await
            .unwrap();
        let stored = store.messages(0).await.unwrap();
        assert_eq!(stored[0].text.as_deref(), Some(text));
        assert_eq!(
            (stored[0].author.as_deref(), stored[0].at),
            (None, i64::MIN)
        );
        let events = store.events_after(0, 2_000).await.unwrap();
        assert_eq!(events.len(), 1_500);
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.at == i as i64 && e.event == format!("{{\"n\":{i}}}")),
            "events are stored in the order given"
        );
    }
);

both!(
    stored_bodies_are_read_back_by_id,
    |store: Store| async move {
        let items: Vec<InboxItem> = (1..=3)
            .map(|i| InboxItem {
                body: format!("body {i}").into_bytes(),
                received_at: i,
            })
            .collect();
        store.append_inbox(&items).await.unwrap();
        let ids: Vec<i64> = store
            .pending_inbox(10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        let read = store
            .inbox_bodies(&[ids[2], 999_999, ids[0]])
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.id, r.body, r.received_at))
            .collect::<Vec<_>>();
        assert_eq!(
            read,
            [
                (ids[0], b"body 1".to_vec(), 1),
                (ids[2], b"body 3".to_vec(), 3)
            ]
        );
        assert!(store.inbox_bodies(&[]).await.unwrap().is_empty());
    }
);

both!(
    a_failing_batch_leaves_nothing_behind,
    |store: Store| async move {
        store
            .append_inbox(&[InboxItem {
                body: b"one".to_vec(),
                received_at: 1,
            }])
            .await
            .unwrap();
        let inbox = store.pending_inbox(10).await.unwrap();
        // Two cards with one number in one pipe: the batch fails.
        let batch = Batch {
            events: vec![(10, "{}".into())],
            cards: vec![card(0, 1, "new"), card(1, 1, "new")],
            messages: vec![message(0, "k", None)],
            inbox_done: vec![(inbox[0].id, None)],
            ..Batch::default()
        };
        assert!(store.commit(batch).await.is_err());
        assert_eq!(store.inbox_backlog().await.unwrap(), 1);
        assert!(store.events_after(0, 10).await.unwrap().is_empty());
    }
);

both!(
    statuses_only_move_up_and_wait_for_their_message,
    |store: Store| async move {
        store
            .commit(Batch {
                cards: vec![card(0, 1, "new")],
                messages: vec![message(0, "out-1-2", None)],
                outbox: vec![OutboxNew {
                    card_id: 0,
                    message_key: "out-1-2".into(),
                    phone_number_id: "106".into(),
                    recipient: "5511987650001".into(),
                    request: "{}".into(),
                    at: 1,
                }],
                ..Batch::default()
            })
            .await
            .unwrap();
        let status = |s: &str, at| StatusRow {
            wamid: "wamid.OUT".into(),
            status: s.into(),
            at,
            reason: None,
            callback: None,
        };
        // The status webhook beats our own record of the send: it is parked.
        assert_eq!(
            store.apply_status(&status("delivered", 3)).await.unwrap(),
            StatusOutcome::Parked
        );
        let claimed = store.claim_outbox(2, 100, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        store
            .outbox_accepted(claimed[0].id, "wamid.OUT", 3)
            .await
            .unwrap();
        assert_eq!(
            store.message_status("wamid.OUT").await.unwrap().unwrap().0,
            "delivered"
        );
        assert_eq!(
            store.apply_status(&status("read", 4)).await.unwrap(),
            StatusOutcome::Applied
        );
        assert_eq!(
            store.apply_status(&status("read", 4)).await.unwrap(),
            StatusOutcome::Duplicate
        );
        // Late `sent` and `failed` never take a read message back.
        assert_eq!(
            store.apply_status(&status("sent", 2)).await.unwrap(),
            StatusOutcome::Stale
        );
        assert_eq!(
            store.apply_status(&status("failed", 5)).await.unwrap(),
            StatusOutcome::Stale
        );
        assert_eq!(
            store.message_status("wamid.OUT").await.unwrap().unwrap().0,
            "read"
        );
    }
);

both!(
    outbox_rows_are_claimed_once_and_a_lost_claim_comes_back_uncertain,
    |store: Store| async move {
        store
            .commit(Batch {
                cards: vec![card(0, 1, "new")],
                messages: vec![message(0, "out-1-1", None)],
                outbox: vec![OutboxNew {
                    card_id: 0,
                    message_key: "out-1-1".into(),
                    phone_number_id: "106".into(),
                    recipient: "5511987650001".into(),
                    request: "{}".into(),
                    at: 1,
                }],
                ..Batch::default()
            })
            .await
            .unwrap();
        assert_eq!(store.outbox_waiting().await.unwrap(), 1);
        let first = store.claim_outbox(10, 20, 10).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(!first[0].uncertain);
        // Claimed: nobody else gets it while the claim holds.
        assert!(store.claim_outbox(15, 30, 10).await.unwrap().is_empty());
        // The sender died: once the claim runs out the row returns, uncertain.
        let again = store.claim_outbox(21, 40, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert!(again[0].uncertain);
        assert_eq!(again[0].attempts, 2);
        store
            .outbox_failed(again[0].id, Some(131026), "message undeliverable", 22)
            .await
            .unwrap();
        assert_eq!(
            store.outbox_row(again[0].id).await.unwrap().unwrap().0,
            "failed"
        );
        assert!(store.next_outbox_due().await.unwrap().is_none());
        assert_eq!(store.outbox_waiting().await.unwrap(), 0);
    }
);

both!(a_retry_waits_for_its_time, |store: Store| async move {
    store
        .commit(Batch {
            cards: vec![card(0, 1, "new")],
            outbox: vec![OutboxNew {
                card_id: 0,
                message_key: "out-1-1".into(),
                phone_number_id: "106".into(),
                recipient: "5511987650001".into(),
                request: "{}".into(),
                at: 1,
            }],
            ..Batch::default()
        })
        .await
        .unwrap();
    let row = store.claim_outbox(1, 100, 10).await.unwrap().remove(0);
    store
        .outbox_retry(row.id, 50, Some(130429), "throughput", 2)
        .await
        .unwrap();
    assert_eq!(store.next_outbox_due().await.unwrap(), Some(50));
    assert!(store.claim_outbox(49, 100, 10).await.unwrap().is_empty());
    assert_eq!(store.claim_outbox(50, 100, 10).await.unwrap().len(), 1);
});

both!(
    one_holder_has_a_lease_until_it_runs_out,
    |store: Store| async move {
        assert!(store.try_lease("engine", "a", 0, 100).await.unwrap());
        assert!(!store.try_lease("engine", "b", 50, 150).await.unwrap());
        assert!(store.try_lease("engine", "a", 60, 160).await.unwrap());
        assert!(store.try_lease("engine", "b", 161, 260).await.unwrap());
        store.release_lease("engine", "b").await.unwrap();
        assert!(store.try_lease("engine", "a", 170, 270).await.unwrap());
    }
);

both!(
    search_finds_cards_by_any_word_and_respects_the_pipe,
    |store: Store| async move {
        let mut sales = card(1, 1, "new");
        sales.pipe = "sales".into();
        store
            .commit(Batch {
                cards: vec![card(0, 1, "new"), sales],
                search: vec![
                    SearchRow {
                        card_id: 0,
                        pipe: "support".into(),
                        body: "Maria Souza: quero um reembolso do pedido 8812".into(),
                    },
                    SearchRow {
                        card_id: 1,
                        pipe: "sales".into(),
                        body: "reembolso talvez".into(),
                    },
                ],
                ..Batch::default()
            })
            .await
            .unwrap();
        assert_eq!(
            store.search("support", "Reembolso 8812", 10).await.unwrap(),
            vec![0]
        );
        assert_eq!(
            store.search("sales", "reembolso", 10).await.unwrap(),
            vec![1]
        );
        assert!(store
            .search("support", "talvez", 10)
            .await
            .unwrap()
            .is_empty());
        // FTS syntax typed by a person is only words.
        assert!(store
            .search("support", "\" OR * NEAR(", 10)
            .await
            .unwrap()
            .is_empty());
    }
);

both!(
    cards_are_listed_by_filter_and_cursor,
    |store: Store| async move {
        let mut b = card(1, 2, "waiting");
        b.assignee = None;
        store
            .commit(Batch {
                cards: vec![card(0, 1, "new"), b, card(2, 3, "new")],
                ..Batch::default()
            })
            .await
            .unwrap();
        let new = CardFilter {
            status: Some("new".into()),
            ..CardFilter::default()
        };
        let ids: Vec<i64> = store
            .cards("support", &new, 10)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, vec![0, 2]);
        let page = CardFilter {
            after: Some(0),
            ..CardFilter::default()
        };
        let ids: Vec<i64> = store
            .cards("support", &page, 1)
            .await
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, vec![1]);
        let mine = CardFilter {
            assignee: Some("ana@acme.com".into()),
            ids: Some(vec![2]),
            ..CardFilter::default()
        };
        assert_eq!(store.cards("support", &mine, 10).await.unwrap().len(), 1);
    }
);

#[tokio::test]
async fn a_bad_url_says_which_databases_are_supported() {
    let err = Store::open("mysql://x").await.unwrap_err().to_string();
    assert!(
        err.contains("sqlite://") && err.contains("postgres://"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_postgres_is_one_sentence_without_the_password() {
    let err = Store::open("postgres://u:secret@127.0.0.1:1/db")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot open the database postgres://u:***@127.0.0.1:1/db"),
        "{err}"
    );
    assert!(!err.contains("secret"));
}

both!(
    users_tokens_and_sessions_find_their_user,
    |store: Store| async move {
        let id = store
            .upsert_user("Ana@Acme.com", "Ana", "agent", Some("$argon2id$x"), 1)
            .await
            .unwrap();
        // Updating without a password keeps it; the e-mail is case-blind.
        let again = store
            .upsert_user("ana@acme.com", "Ana Lima", "manager", None, 2)
            .await
            .unwrap();
        assert_eq!(id, again);
        let ana = store.user_by_email("ANA@acme.com").await.unwrap().unwrap();
        assert_eq!(
            (
                ana.name.as_str(),
                ana.role.as_str(),
                ana.password_hash.as_deref()
            ),
            ("Ana Lima", "manager", Some("$argon2id$x"))
        );
        store
            .create_token(id, "hash-of-token", "ci", 3)
            .await
            .unwrap();
        assert_eq!(
            store
                .user_by_token("hash-of-token", 4)
                .await
                .unwrap()
                .unwrap()
                .id,
            id
        );
        assert!(store.user_by_token("other", 4).await.unwrap().is_none());
        store
            .create_session("hash-of-session", id, "csrf-1", 100, 5)
            .await
            .unwrap();
        let (user, csrf) = store.session("hash-of-session", 50).await.unwrap().unwrap();
        assert_eq!((user.id, csrf.as_str()), (id, "csrf-1"));
        assert!(
            store
                .session("hash-of-session", 100)
                .await
                .unwrap()
                .is_none(),
            "expired"
        );
        store.delete_session("hash-of-session").await.unwrap();
        assert!(store
            .session("hash-of-session", 50)
            .await
            .unwrap()
            .is_none());
    }
);

both!(
    a_pipes_figures_are_counted_in_the_database,
    |store: Store| async move {
        let day = 86_400_000;
        let hour = 3_600_000;
        let mut waiting = card(0, 1, "new");
        waiting.created_at = 10 * day;
        let mut late = card(1, 2, "new");
        late.sla_state = "breached".into();
        late.assignee = None;
        late.created_at = 11 * day;
        let mut done = card(2, 3, "done");
        done.open = false;
        done.last_responder = Some("team".into());
        done.created_at = 11 * day + 5;
        done.first_reply_at = Some(11 * day + 5 + 60_000);
        done.closed_at = Some(12 * day + 5);
        let mut billing = card(3, 4, "new");
        billing.team = Some("billing".into());
        billing.last_responder = Some("team".into());
        billing.created_at = 12 * day - 2 * hour;
        billing.first_reply_at = Some(12 * day - hour);
        let mut old = card(4, 5, "done");
        old.open = false;
        old.sla_state = "breached".into();
        old.created_at = day;
        old.closed_at = Some(2 * day);
        store
            .commit(Batch {
                cards: vec![waiting, late, done, billing, old],
                ..Batch::default()
            })
            .await
            .unwrap();
        let s = store.pipe_stats("support", 10 * day, 0).await.unwrap();
        let work = |team: &str, open, in_progress, waiting, overdue| TeamWork {
            team: Some(team.into()),
            open,
            in_progress,
            waiting,
            overdue,
        };
        assert_eq!(
            s.teams,
            vec![work("billing", 1, 1, 0, 0), work("frontline", 2, 1, 2, 1)]
        );
        assert_eq!((s.teams[0].unassigned(), s.teams[1].unassigned()), (0, 1));
        let total = s.total();
        assert_eq!((total.open, total.in_progress, total.waiting), (3, 2, 2));
        // The period's cards only: the old breached card is not counted.
        assert_eq!((s.with_sla, s.breached), (4, 1));
        assert_eq!(s.opened_per_day, vec![(10, 1), (11, 3)]);
        assert_eq!(s.resolved_per_day, vec![(12, 1)]);
        assert_eq!(s.first_responses.len(), 2);
        assert!(s.first_responses.contains(&60_000) && s.first_responses.contains(&hour));
        assert_eq!(s.resolutions, vec![day]);
        // Three hours west of UTC (São Paulo): the billing card opened on
        // day 11 at 22:00 UTC is on day 11 there too, the others move back.
        let s = store
            .pipe_stats("support", 9 * day, -3 * hour)
            .await
            .unwrap();
        assert_eq!(s.opened_per_day, vec![(9, 1), (10, 2), (11, 1)]);
    }
);

/// A batch that does not wait for the disk leaves SQLite's one writer
/// connection waiting for it again: agents' actions and the sender's claims
/// stored next on it must be on disk.
#[tokio::test]
async fn after_a_redoable_batch_sqlite_writes_wait_for_the_disk_again() {
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    assert_eq!(db.writer_synchronous().await.expect("pragma"), 2);
    db.store
        .commit(Batch {
            events: vec![(1, "{}".into())],
            redoable: true,
            ..Batch::default()
        })
        .await
        .expect("commit");
    assert_eq!(db.writer_synchronous().await.expect("pragma"), 2);
    // Also when the batch fails.
    let failing = Batch {
        cards: vec![card(0, 1, "new"), card(1, 1, "new")],
        redoable: true,
        ..Batch::default()
    };
    assert!(db.store.commit(failing).await.is_err());
    assert_eq!(db.writer_synchronous().await.expect("pragma"), 2);
    assert_eq!(db.store.events_after(0, 10).await.expect("events").len(), 1);
    db.finish().await.expect("cleanup");
}

/// On SQLite, storing a webhook body does not wait for an engine transaction
/// (the bodies have a file and a writer of their own): Meta's answer is not
/// held up by the engine's work.
#[tokio::test]
async fn a_webhook_body_is_stored_while_the_engine_writes() {
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let engine = db.writing().await.expect("a write transaction");
    let body = InboxItem {
        body: b"{}".to_vec(),
        received_at: 1,
    };
    let stored = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        db.store.append_inbox(&[body]),
    )
    .await
    .expect("the body is stored without waiting for the engine's transaction");
    assert_eq!(stored.expect("store"), 1);
    engine.rollback().await.expect("rollback");
    assert_eq!(db.store.inbox_backlog().await.expect("store"), 1);
    db.finish().await.expect("cleanup");
}

/// An inbox file lost, replaced, or restored from a backup older than the
/// database: new bodies are numbered after the engine's cursor, so none is
/// taken for one already processed.
#[tokio::test]
async fn a_lost_inbox_file_does_not_hide_new_bodies() {
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let items: Vec<InboxItem> = (0..3)
        .map(|i| InboxItem {
            body: format!("{{\"n\":{i}}}").into_bytes(),
            received_at: i,
        })
        .collect();
    db.store.append_inbox(&items).await.expect("store");
    assert_eq!(db.consume_inbox().await.expect("store"), 3);
    db.store.close().await;
    let file = db
        .store
        .inbox_file()
        .expect("sqlite has an inbox file")
        .to_string();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{file}{suffix}"));
    }

    let store = Store::open(&db.url).await.expect("reopened");
    let late = InboxItem {
        body: b"{\"late\":1}".to_vec(),
        received_at: 9,
    };
    assert_eq!(store.append_inbox(&[late]).await.expect("store"), 1);
    let pending = store.pending_inbox(10).await.expect("store");
    assert_eq!(pending.len(), 1, "the new body waits");
    assert_eq!(
        (pending[0].id, pending[0].body.as_slice()),
        (4, b"{\"late\":1}".as_slice())
    );
    store.close().await;
    db.finish().await.expect("cleanup");
}

/// A database started afresh beside the inbox file of an older one does not
/// take its bodies for new ones (rules would answer them again): the start
/// stops with a sentence, and the old inbox file is left as it was.
#[tokio::test]
async fn a_new_database_refuses_an_old_inbox_file() {
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let body = InboxItem {
        body: b"{\"old\":1}".to_vec(),
        received_at: 1,
    };
    db.store.append_inbox(&[body]).await.expect("store");
    db.store.close().await;
    let file = db.url.trim_start_matches("sqlite://").to_string();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{file}{suffix}"));
    }

    let refused = Store::open(&db.url)
        .await
        .expect_err("a new database beside an old inbox file");
    let sentence = refused.to_string();
    assert!(
        sentence.contains("belongs to another database") && sentence.contains("-inbox.db"),
        "{sentence}"
    );
    // Moved away, a fresh inbox file is made and the server starts.
    let inbox = file.replace("test.db", "test-inbox.db");
    std::fs::rename(&inbox, format!("{inbox}.old")).expect("move the inbox file away");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{inbox}{suffix}"));
    }
    let store = Store::open(&db.url)
        .await
        .expect("started with an empty inbox");
    assert_eq!(store.inbox_backlog().await.expect("store"), 0);
    store.close().await;
    db.finish().await.expect("cleanup");
}

#[tokio::test]
async fn sqlite_in_memory_is_refused_with_a_sentence() {
    let refused = Store::open("sqlite::memory:").await.expect_err("in memory");
    assert!(
        refused.to_string().contains("names SQLite in memory"),
        "{refused}"
    );
}

/// The sender's claim finds the first due messages through the outbox's
/// partial index, in order, on SQLite: not by reading every message ever
/// sent and sorting them (its condition must repeat the index's own).
#[tokio::test]
async fn the_senders_claim_reads_the_due_messages_from_their_index() {
    let db = TestDb::new(Backend::Sqlite).await.expect("sqlite");
    let plan = db.claim_plan().await.expect("plan");
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX outbox_due")),
        "{plan:?}"
    );
    assert!(
        !plan
            .iter()
            .any(|step| step == "SCAN outbox" || step.contains("TEMP B-TREE")),
        "{plan:?}"
    );
    db.finish().await.expect("cleanup");
}

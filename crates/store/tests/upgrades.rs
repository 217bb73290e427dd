//! Migrations run on databases that already hold data: what a server of an
//! older version stored is still there, and means the same, afterwards.
//! Each test runs on SQLite and on PostgreSQL.

use switchboard_store::testing::TestDb;
use switchboard_store::*;

/// 0006 moved "which bodies wait" from `wa_inbox.processed_at` to a table
/// of ids: bodies that were waiting still wait, in order, processed ones do
/// not, flagged notes stay, and new bodies wait once (retries not at all).
async fn waiting_webhook_bodies_still_wait_after_the_pending_table(backend: Backend) {
    let db = TestDb::at_version(backend, 5)
        .await
        .expect("database at 0005");
    let blob = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    db.execute(&format!(
        "INSERT INTO wa_inbox (body_hash, body, received_at, processed_at, note) VALUES \
         ('h1', CAST('done' AS {blob}), 1, 10, NULL), \
         ('h2', CAST('flagged' AS {blob}), 2, 10, 'not JSON'), \
         ('h3', CAST('waiting one' AS {blob}), 3, NULL, NULL), \
         ('h4', CAST('waiting two' AS {blob}), 4, NULL, NULL)"
    ))
    .await
    .expect("old rows");
    db.store.migrate().await.expect("the later migrations");

    let pending = db.store.pending_inbox(10).await.expect("store");
    let bodies: Vec<&[u8]> = pending.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(bodies, [b"waiting one".as_slice(), b"waiting two"]);
    assert_eq!(db.store.inbox_backlog().await.expect("store"), 2);
    assert_eq!(
        db.store.flagged_inbox(10).await.expect("store"),
        [(2, "not JSON".to_string())]
    );

    // New bodies wait after the old ones; a retry of one adds nothing.
    let new = InboxItem {
        body: b"new".to_vec(),
        received_at: 5,
    };
    assert_eq!(
        db.store
            .append_inbox(std::slice::from_ref(&new))
            .await
            .expect("store"),
        1
    );
    assert_eq!(db.store.append_inbox(&[new]).await.expect("store"), 0);
    let pending = db.store.pending_inbox(10).await.expect("store");
    assert_eq!(pending.len(), 3);
    assert_eq!(pending[2].body, b"new");

    // Consuming the oldest leaves the newest waiting and keeps the note given.
    db.store
        .commit(Batch {
            inbox_done: vec![(pending[0].id, None), (pending[1].id, Some("odd".into()))],
            ..Batch::default()
        })
        .await
        .expect("store");
    let left = db.store.pending_inbox(10).await.expect("store");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].body, b"new");
    assert_eq!(db.store.flagged_inbox(1).await.expect("store")[0].1, "odd");
    db.finish().await.expect("cleanup");
}

#[tokio::test]
async fn pending_table_on_sqlite() {
    waiting_webhook_bodies_still_wait_after_the_pending_table(Backend::Sqlite).await;
}

#[tokio::test]
async fn pending_table_on_postgres() {
    waiting_webhook_bodies_still_wait_after_the_pending_table(Backend::Postgres).await;
}

/// 0007 moved SQLite's webhook bodies to a file of their own (the engine's
/// progress a cursor in the database) and, on both databases, the notes to a
/// table of their own: waiting bodies still wait, processed ones do not,
/// notes stay, and new bodies are numbered after the old ones.
async fn waiting_webhook_bodies_still_wait_after_the_inbox_file(backend: Backend) {
    let db = TestDb::at_version(backend, 6)
        .await
        .expect("database at 0006");
    let blob = match backend {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    // Five bodies (the trigger makes them wait), the first three processed,
    // the second flagged.
    db.execute(&format!(
        "INSERT INTO wa_inbox (body_hash, body, received_at, note) VALUES \
         ('h1', CAST('done' AS {blob}), 1, NULL), \
         ('h2', CAST('flagged' AS {blob}), 2, 'not JSON'), \
         ('h3', CAST('done too' AS {blob}), 3, NULL), \
         ('h4', CAST('waiting one' AS {blob}), 4, NULL), \
         ('h5', CAST('waiting two' AS {blob}), 5, NULL); \
         DELETE FROM wa_inbox_pending WHERE id <= 3"
    ))
    .await
    .expect("old rows");
    db.store.migrate().await.expect("the later migrations");
    // Run twice, as every start does: nothing moves or changes again.
    db.store.migrate().await.expect("the migrations again");

    let pending = db.store.pending_inbox(10).await.expect("store");
    let bodies: Vec<&[u8]> = pending.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(bodies, [b"waiting one".as_slice(), b"waiting two"]);
    assert_eq!(
        pending.iter().map(|r| r.id).collect::<Vec<_>>(),
        [4, 5],
        "the bodies keep their numbers"
    );
    assert_eq!(db.store.inbox_backlog().await.expect("store"), 2);
    assert_eq!(
        db.store.flagged_inbox(10).await.expect("store"),
        [(2, "not JSON".to_string())]
    );
    if backend == Backend::Sqlite {
        assert!(
            db.execute("SELECT id FROM wa_inbox").await.is_err(),
            "the database no longer holds the bodies"
        );
    }

    // A new body is numbered after the old ones and waits after them.
    let new = InboxItem {
        body: b"new".to_vec(),
        received_at: 6,
    };
    assert_eq!(db.store.append_inbox(&[new]).await.expect("store"), 1);
    let pending = db.store.pending_inbox(10).await.expect("store");
    assert_eq!(pending.len(), 3);
    assert_eq!(
        (pending[2].id, pending[2].body.as_slice()),
        (6, b"new".as_slice())
    );
    assert_eq!(db.consume_inbox().await.expect("store"), 3);
    assert_eq!(db.store.inbox_backlog().await.expect("store"), 0);
    db.finish().await.expect("cleanup");
}

#[tokio::test]
async fn inbox_file_on_sqlite() {
    waiting_webhook_bodies_still_wait_after_the_inbox_file(Backend::Sqlite).await;
}

#[tokio::test]
async fn inbox_notes_on_postgres() {
    waiting_webhook_bodies_still_wait_after_the_inbox_file(Backend::Postgres).await;
}

/// Upgrading a database whose folder still holds an inbox file of another
/// database (left from an earlier try): nothing is copied into it and the
/// old bodies stay in the database; once it is moved away, the upgrade goes
/// through with every body.
#[tokio::test]
async fn an_upgrade_beside_a_foreign_inbox_file_moves_nothing() {
    let other = TestDb::new(Backend::Sqlite)
        .await
        .expect("another database");
    other
        .store
        .append_inbox(&[InboxItem {
            body: b"theirs".to_vec(),
            received_at: 1,
        }])
        .await
        .expect("store");
    other.store.checkpoint().await.expect("checkpoint");
    other.store.close().await;
    let theirs = other.store.inbox_file().expect("an inbox file").to_string();

    let mut db = TestDb::at_version(Backend::Sqlite, 6)
        .await
        .expect("database at 0006");
    db.execute(
        "INSERT INTO wa_inbox (body_hash, body, received_at) VALUES \
         ('h1', CAST('ours one' AS BLOB), 1), ('h2', CAST('ours two' AS BLOB), 2)",
    )
    .await
    .expect("old rows");
    db.store.close().await;
    let ours = db.store.inbox_file().expect("an inbox file").to_string();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{ours}{suffix}"));
    }
    // The file and its write-ahead log, as they lie on disk (connections
    // closing together may each leave the log to the other).
    std::fs::copy(&theirs, &ours).expect("the foreign inbox file");
    let wal = format!("{theirs}-wal");
    if std::path::Path::new(&wal).exists() {
        std::fs::copy(&wal, format!("{ours}-wal")).expect("its write-ahead log");
    }

    db.store = Store::connect(&db.url).await.expect("reopened");
    let refused = db.store.migrate().await.expect_err("a foreign inbox file");
    assert!(
        refused.to_string().contains("belongs to another database"),
        "{refused}"
    );
    db.store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{ours}{suffix}"));
    }

    db.store = Store::connect(&db.url).await.expect("reopened");
    db.store.migrate().await.expect("the upgrade");
    let bodies: Vec<Vec<u8>> = db
        .store
        .pending_inbox(10)
        .await
        .expect("store")
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies, [b"ours one".to_vec(), b"ours two".to_vec()]);
    db.finish().await.expect("cleanup");
    other.finish().await.expect("cleanup");
}

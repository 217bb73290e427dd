//! Storage for the server: SQLite (the embedded default, created on first
//! start) and PostgreSQL behind one API.
//!
//! Both databases are reached through sqlx's `Any` driver with one set of
//! queries: times are milliseconds since the epoch in integer columns, flags
//! are integers, JSON is text. Only three things differ per database and are
//! chosen by [`Backend`]: the migrations (`migrations/sqlite`,
//! `migrations/postgres`), full-text search (FTS5 or `tsvector`) and claiming
//! outbox rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL).
//!
//! Writes that belong together go through [`Store::commit`] in one
//! transaction with multi-row statements: the number of statements per
//! event, not the engine, sets the server's ceiling.

mod accounts;
mod rows;

pub use accounts::User;
pub use rows::*;

use sqlx::any::AnyRow;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, one file, WAL.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// What can go wrong with the database, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no database we support.
    #[error("the database URL `{0}` should start with sqlite:// or postgres://")]
    BadUrl(String),
    /// The database could not be opened or reached.
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    /// SQLite's inbox file does not go with the database.
    #[error("{0}")]
    Inbox(String),
    /// SQLite in memory: every connection would see a database of its own,
    /// gone when it closes.
    #[error("the database URL `{0}` names SQLite in memory; Switchboard keeps its data in files: name one, for example sqlite://switchboard.db")]
    InMemory(String),
}

/// Results of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    /// Reads (and, on PostgreSQL, writes too).
    pool: AnyPool,
    /// Writes. On SQLite one connection: writers wait their turn in the pool
    /// (cheap, in order) instead of in SQLite's busy handler (sleeps of up to
    /// 100 ms), while readers keep their own connections (WAL).
    writer: AnyPool,
    /// Where webhook bodies are stored and read.
    inbox: Inbox,
    backend: Backend,
    /// The server checkpoints SQLite's WAL itself ([`Store::take_over_checkpoints`]).
    manual_checkpoints: Arc<std::sync::atomic::AtomicBool>,
}

/// The raw webhook log. On SQLite it is a file of its own beside the
/// database (`switchboard-inbox.db` beside `switchboard.db`) with its own
/// writer connection, so that storing a webhook body never waits for an
/// engine transaction on the database's one writer; the engine's progress
/// through it is a cursor kept in the database (`inbox_cursor`), written in
/// the engine's own transactions. SQLite numbers the bodies in commit order
/// (one writer per file), so every body past the cursor is one not yet
/// processed. On PostgreSQL it is the `wa_inbox` table of the database and
/// the waiting ids are the `wa_inbox_pending` table (ids there are not in
/// commit order).
#[derive(Clone, Debug)]
struct Inbox {
    /// Reads.
    pool: AnyPool,
    /// Writes (one connection on SQLite).
    writer: AnyPool,
    /// SQLite: the file's path.
    file: Option<String>,
}

/// The migrations of each database, embedded in the binary.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
/// The migrations of SQLite's inbox file.
static SQLITE_INBOX_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../../migrations/sqlite-inbox");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// A URL with its password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The path and URL of the inbox file that belongs to a SQLite database
/// URL: `-inbox` before the file name's extension, the same parameters.
fn inbox_file(url: &str) -> (String, String) {
    let (scheme, rest) = match url.strip_prefix("sqlite://") {
        Some(rest) => ("sqlite://", rest),
        None => ("sqlite:", url.strip_prefix("sqlite:").unwrap_or(url)),
    };
    let (path, params) = match rest.find('?') {
        Some(q) => rest.split_at(q),
        None => (rest, ""),
    };
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    let file = match path[name_start..].rfind('.') {
        Some(dot) if dot > 0 => {
            let dot = name_start + dot;
            format!("{}-inbox{}", &path[..dot], &path[dot..])
        }
        _ => format!("{path}-inbox"),
    };
    let url = format!("{scheme}{file}{params}");
    (file, url)
}

/// A SQLite file's pools: `readers` connections for reads, one for writes.
async fn sqlite_pools(
    url: &str,
    readers: u32,
    manual_checkpoints: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(AnyPool, AnyPool), sqlx::Error> {
    let options = AnyConnectOptions::from_str(url)?;
    let pool = |connections: u32, writer: bool| {
        let manual = manual_checkpoints.clone();
        AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(60))
            .after_connect(move |conn, _| {
                let manual = manual.clone();
                Box::pin(async move {
                    // A writer connection opened again keeps leaving
                    // checkpoints to the server.
                    if writer && manual.load(std::sync::atomic::Ordering::SeqCst) {
                        sqlx::query("PRAGMA wal_autocheckpoint = 0")
                            .execute(&mut *conn)
                            .await?;
                    }
                    // WAL lets readers work while the writer commits; FULL
                    // makes every acknowledged commit survive a power cut,
                    // not only a crash.
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA busy_timeout = 10000",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
    };
    // The writer first: it creates the file and sets WAL.
    let writer = pool(1, true).connect_with(options.clone()).await?;
    let readers = pool(readers, false).connect_with(options).await?;
    Ok((readers, writer))
}

impl Store {
    /// Opens the database named by the URL (`sqlite://file.db` is created if
    /// missing) and applies the migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without touching its schema.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        let connect_err = |source| StoreError::Connect {
            url: redact(url),
            source,
        };
        let manual_checkpoints = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (pool, writer, inbox) = match backend {
            Backend::Sqlite => {
                if url.contains(":memory:") || url.contains("mode=memory") {
                    return Err(StoreError::InMemory(url.to_string()));
                }
                let with_mode = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                let (pool, writer) = sqlite_pools(&with_mode, 4, &manual_checkpoints)
                    .await
                    .map_err(connect_err)?;
                let (file, inbox_url) = inbox_file(&with_mode);
                let (inbox_pool, inbox_writer) = sqlite_pools(&inbox_url, 2, &manual_checkpoints)
                    .await
                    .map_err(|source| StoreError::Connect {
                        url: inbox_url.clone(),
                        source,
                    })?;
                let inbox = Inbox {
                    pool: inbox_pool,
                    writer: inbox_writer,
                    file: Some(file),
                };
                (pool, writer, inbox)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(10)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(connect_err)?;
                let inbox = Inbox {
                    pool: pool.clone(),
                    writer: pool.clone(),
                    file: None,
                };
                (pool.clone(), pool, inbox)
            }
        };
        Ok(Store {
            pool,
            writer,
            inbox,
            backend,
            manual_checkpoints,
        })
    }

    /// Applies the migrations that have not run yet.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                SQLITE_MIGRATIONS.run(&self.writer).await?;
                SQLITE_INBOX_MIGRATIONS.run(&self.inbox.writer).await?;
                // Paired before anything moves: bodies are never copied
                // into an inbox file that belongs to another database.
                self.pair_inbox().await?;
                self.move_inbox_out().await?;
                self.number_after_cursor().await?;
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.writer).await?,
        }
        Ok(())
    }

    /// SQLite databases of before migration 0007 kept their webhook bodies
    /// in the database itself: they move to the inbox file, ids and all
    /// (the cursor 0007 set counts in those ids), a thousand at a time.
    /// Copied first and removed after, so a crash between the two only
    /// repeats the copy; a body the inbox file holds under the same number
    /// must be the same body, or nothing is removed.
    async fn move_inbox_out(&self) -> Result<()> {
        let Some(file) = &self.inbox.file else {
            return Ok(());
        };
        let old = sqlx::query(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'wa_inbox'",
        )
        .fetch_one(&self.writer)
        .await?
        .try_get::<i64, _>("n")?;
        if old == 0 {
            return Ok(());
        }
        let mut after = 0_i64;
        loop {
            let rows = sqlx::query(
                "SELECT id, body_hash, body, received_at FROM wa_inbox WHERE id > $1 ORDER BY id LIMIT 1000",
            )
            .bind(after)
            .fetch_all(&self.writer)
            .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.try_get("id")?;
            let mut copy = Vec::with_capacity(rows.len());
            let mut hashes = std::collections::HashMap::with_capacity(rows.len());
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                let hash: String = r.try_get("body_hash")?;
                hashes.insert(id, hash.clone());
                copy.push(vec![
                    Val::Int(id),
                    Val::Text(hash),
                    Val::Bytes(r.try_get("body")?),
                    Val::Int(r.try_get("received_at")?),
                ]);
            }
            // In id order: the first row's is the lowest.
            let first: i64 = rows[0].try_get("id")?;
            let mut tx = self.inbox.writer.begin().await?;
            insert_many(
                &mut tx,
                self.backend,
                "INSERT INTO wa_inbox (id, body_hash, body, received_at)",
                "ON CONFLICT DO NOTHING",
                copy,
            )
            .await?;
            let there =
                sqlx::query("SELECT id, body_hash FROM wa_inbox WHERE id >= $1 AND id <= $2")
                    .bind(first)
                    .bind(after)
                    .fetch_all(&mut *tx)
                    .await?;
            let mut same = 0;
            for r in &there {
                let id: i64 = r.try_get("id")?;
                let hash: String = r.try_get("body_hash")?;
                if hashes.get(&id) == Some(&hash) {
                    same += 1;
                }
            }
            if same != hashes.len() {
                return Err(StoreError::Inbox(format!(
                    "the inbox file {file} already holds other webhook bodies under the numbers of this \
                     database's (from {first} to {after}): it belongs to another database. Move it away \
                     and start again; nothing was moved"
                )));
            }
            tx.commit().await?;
        }
        sqlx::query("DROP TABLE wa_inbox")
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// The database and its inbox file carry the same random token, written
    /// when they first meet: a database started afresh beside an old inbox
    /// file would otherwise take the old bodies for new ones and answer
    /// them again, and an old database copied over a new inbox would mix
    /// two histories. A database whose inbox file is gone gets a new, empty
    /// one (see [`Store::number_after_cursor`]).
    async fn pair_inbox(&self) -> Result<()> {
        let Some(file) = &self.inbox.file else {
            return Ok(());
        };
        let ours: Option<String> = sqlx::query("SELECT inbox_token FROM inbox_cursor")
            .fetch_one(&self.writer)
            .await?
            .try_get("inbox_token")?;
        let theirs: Option<String> = sqlx::query("SELECT token FROM inbox_identity")
            .fetch_optional(&self.inbox.writer)
            .await?
            .map(|r| r.try_get("token"))
            .transpose()?;
        let bodies: i64 = sqlx::query("SELECT COUNT(*) AS n FROM wa_inbox")
            .fetch_one(&self.inbox.writer)
            .await?
            .try_get("n")?;
        match (ours, theirs) {
            (Some(a), Some(b)) if a == b => Ok(()),
            (Some(a), None) if bodies == 0 => self.write_inbox_token(&a).await,
            (None, None) => {
                let token: String = sqlx::query("SELECT lower(hex(randomblob(16))) AS t")
                    .fetch_one(&self.writer)
                    .await?
                    .try_get("t")?;
                // The database first: after a crash in between, the empty
                // inbox file takes the database's token at the next start.
                sqlx::query("UPDATE inbox_cursor SET inbox_token = $1")
                    .bind(&token)
                    .execute(&self.writer)
                    .await?;
                self.write_inbox_token(&token).await
            }
            _ => Err(StoreError::Inbox(format!(
                "the inbox file {file} belongs to another database: its webhook bodies would be \
                 processed as new ones. Restore the database that goes with it, or move the inbox \
                 file away to start with an empty one"
            ))),
        }
    }

    /// Writes the inbox file's token.
    async fn write_inbox_token(&self, token: &str) -> Result<()> {
        sqlx::query("INSERT INTO inbox_identity (id, token) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET token = excluded.token")
            .bind(token)
            .execute(&self.inbox.writer)
            .await?;
        Ok(())
    }

    /// New bodies must be numbered past the engine's cursor, or the engine
    /// would take them for processed ones. They always are, unless the
    /// inbox file was lost or replaced by an empty one: then its numbering
    /// continues after the cursor. One transaction, opened by the write, so
    /// no body is numbered in between.
    async fn number_after_cursor(&self) -> Result<()> {
        let cursor = self.inbox_cursor().await?;
        let mut tx = self.inbox.writer.begin().await?;
        let raised =
            sqlx::query("UPDATE sqlite_sequence SET seq = $1 WHERE name = 'wa_inbox' AND seq < $1")
                .bind(cursor)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let added = sqlx::query(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'wa_inbox', $1 \
             WHERE $1 > 0 AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'wa_inbox')",
        )
        .bind(cursor)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if raised + added > 0 {
            tracing::warn!(
                file = self.inbox.file.as_deref().unwrap_or(""),
                cursor,
                "the inbox file holds fewer webhook bodies than the engine has processed (it was lost or replaced); new bodies are numbered from the cursor on so that none is skipped"
            );
        }
        Ok(())
    }

    /// SQLite: the last inbox id the engine has processed.
    async fn inbox_cursor(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT last_done FROM inbox_cursor")
            .fetch_one(&self.pool)
            .await?
            .try_get("last_done")?)
    }

    /// SQLite: the file of the webhook bodies, beside the database.
    pub fn inbox_file(&self) -> Option<&str> {
        self.inbox.file.as_deref()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (waits for queries in flight).
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
        self.inbox.pool.close().await;
        self.inbox.writer.close().await;
    }

    /// Whether the database answers.
    pub async fn healthy(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
            && sqlx::query("SELECT 1")
                .execute(&self.inbox.pool)
                .await
                .is_ok()
    }

    // ---- the inbox ------------------------------------------------------

    /// Stores webhook bodies exactly as received, in one transaction and one
    /// statement. A body already stored (a retry of the same POST) is kept
    /// once. Returns how many were new.
    pub async fn append_inbox(&self, items: &[InboxItem]) -> Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        let rows = items
            .iter()
            .map(|i| {
                vec![
                    Val::Text(body_hash(&i.body)),
                    Val::Bytes(i.body.clone()),
                    Val::Int(i.received_at),
                ]
            })
            .collect();
        let mut tx = self.inbox.writer.begin().await?;
        let n = insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO wa_inbox (body_hash, body, received_at)",
            "ON CONFLICT (body_hash) DO NOTHING",
            rows,
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Bodies not processed yet, oldest first.
    pub async fn pending_inbox(&self, limit: i64) -> Result<Vec<InboxRow>> {
        let rows = match self.backend {
            Backend::Sqlite => {
                let cursor = self.inbox_cursor().await?;
                sqlx::query(
                    "SELECT id, body, received_at FROM wa_inbox WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(cursor)
                .bind(limit)
                .fetch_all(&self.inbox.pool)
                .await?
            }
            Backend::Postgres => {
                sqlx::query(
                    // The oldest waiting ids first, then their bodies by key (a
                    // join let PostgreSQL walk the whole inbox in key order).
                    "SELECT id, body, received_at FROM wa_inbox \
                     WHERE id IN (SELECT id FROM wa_inbox_pending ORDER BY id LIMIT $1) ORDER BY id",
                )
                .bind(limit)
                .fetch_all(&self.inbox.pool)
                .await?
            }
        };
        rows.iter().map(InboxRow::from_row).collect()
    }

    /// How many bodies wait for the processor.
    pub async fn inbox_backlog(&self) -> Result<i64> {
        let row = match self.backend {
            Backend::Sqlite => {
                let cursor = self.inbox_cursor().await?;
                sqlx::query("SELECT COUNT(*) AS n FROM wa_inbox WHERE id > $1")
                    .bind(cursor)
                    .fetch_one(&self.inbox.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::query("SELECT COUNT(*) AS n FROM wa_inbox_pending")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        Ok(row.try_get("n")?)
    }

    /// Bodies processed with a note (bad JSON, an unknown number …), newest first.
    pub async fn flagged_inbox(&self, limit: i64) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT inbox_id, note FROM wa_inbox_notes ORDER BY inbox_id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("inbox_id")?, r.try_get("note")?)))
            .collect()
    }

    /// Stored webhook bodies by id, in id order: what an operator reads of a
    /// flagged one.
    pub async fn inbox_bodies(&self, ids: &[i64]) -> Result<Vec<InboxRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Our own integers, written as literals.
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let rows = sqlx::query(&format!(
            "SELECT id, body, received_at FROM wa_inbox WHERE id IN ({}) ORDER BY id",
            list.join(", ")
        ))
        .fetch_all(&self.inbox.pool)
        .await?;
        rows.iter().map(InboxRow::from_row).collect()
    }

    // ---- the engine's log -------------------------------------------------

    /// Engine events after `seq`, in order, at most `limit`.
    pub async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(
            "SELECT seq, at, event FROM engine_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    event: r.try_get("event")?,
                })
            })
            .collect()
    }

    /// Records a workflow version (its files' texts as JSON) and returns its id.
    pub async fn save_workflow_version(&self, hash: &str, sources: &str, at: i64) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO workflow_versions (hash, sources, loaded_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(hash)
        .bind(sources)
        .bind(at)
        .fetch_one(&self.writer)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// A workflow version's files (JSON), by id.
    pub async fn workflow_version(&self, id: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT sources FROM workflow_versions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("sources")?),
            None => None,
        })
    }

    /// Writes everything one processing batch produced, in one transaction:
    /// engine events, cards, messages, history, contacts, the outbox, the
    /// search index, alerts, and the inbox rows it consumed. Either all of it
    /// is stored or none.
    ///
    /// A batch marked [`Batch::redoable`] does not wait for the disk: on
    /// PostgreSQL it commits with `synchronous_commit = off`, on SQLite with
    /// `synchronous = NORMAL`. The next commit on the same database that
    /// does wait (the sender's claim before any message leaves, an agent's
    /// action; on PostgreSQL also a webhook body) writes it to disk too,
    /// because the log is written in order; and if the machine stops before
    /// that, the webhook bodies it consumed are still waiting (the cursor or
    /// the pending table did not move) and are processed again.
    pub async fn commit(&self, batch: Batch) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        let lazy_sqlite = batch.redoable && self.backend == Backend::Sqlite;
        if lazy_sqlite {
            // Outside the transaction (SQLite refuses it inside), on this
            // connection only, and set back below whatever happens: the
            // agents' actions and the sender's claims that share the
            // connection must wait for the disk.
            if let Err(e) = sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await
            {
                conn.close_on_drop();
                return Err(e.into());
            }
        }
        let result = self.write_batch(&mut conn, batch).await;
        if lazy_sqlite
            && sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await
                .is_err()
        {
            conn.close_on_drop();
        }
        result
    }

    /// [`Store::commit`]'s transaction.
    async fn write_batch(&self, conn: &mut AnyConnection, batch: Batch) -> Result<()> {
        let mut tx = conn.begin().await?;
        if batch.redoable && self.backend == Backend::Postgres {
            sqlx::query("SET LOCAL synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
        }
        let conn: &mut AnyConnection = &mut tx;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO engine_events (at, event)",
            "",
            batch
                .events
                .into_iter()
                .map(|(at, e)| vec![Val::Int(at), Val::Text(e)])
                .collect(),
        )
        .await?;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO contacts (wa_id, user_id, username, name, phone, updated_at)",
            "ON CONFLICT (wa_id) DO UPDATE SET user_id = COALESCE(excluded.user_id, contacts.user_id), \
             username = COALESCE(excluded.username, contacts.username), name = excluded.name, \
             phone = excluded.phone, updated_at = excluded.updated_at",
            batch.contacts.into_iter().map(ContactRow::vals).collect(),
        )
        .await?;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO cards (id, pipe, number, contact, status, open, assignee, team, sla_state, sla_due_at, \
             last_responder, template_needed, preview, view, created_at, updated_at, first_reply_at, closed_at)",
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, open = excluded.open, \
             assignee = excluded.assignee, team = excluded.team, sla_state = excluded.sla_state, \
             sla_due_at = excluded.sla_due_at, last_responder = excluded.last_responder, \
             template_needed = excluded.template_needed, preview = excluded.preview, view = excluded.view, \
             updated_at = excluded.updated_at, first_reply_at = excluded.first_reply_at, \
             closed_at = excluded.closed_at",
            batch.cards.into_iter().map(CardRow::vals).collect(),
        )
        .await?;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO messages (card_id, key, wamid, direction, type, text, author, status, at, wa_timestamp, raw)",
            "ON CONFLICT DO NOTHING",
            batch.messages.into_iter().map(MessageRow::vals).collect(),
        )
        .await?;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO history (card_id, at, what, cause)",
            "",
            batch
                .history
                .into_iter()
                .map(|h| {
                    vec![
                        Val::Int(h.card_id),
                        Val::Int(h.at),
                        Val::Text(h.what),
                        Val::Text(h.cause),
                    ]
                })
                .collect(),
        )
        .await?;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO outbox (card_id, message_key, phone_number_id, recipient, request, state, next_attempt_at, created_at, updated_at)",
            "",
            batch
                .outbox
                .into_iter()
                .map(|o| {
                    vec![
                        Val::Int(o.card_id),
                        Val::Text(o.message_key),
                        Val::Text(o.phone_number_id),
                        Val::Text(o.recipient),
                        Val::Text(o.request),
                        Val::Text("queued".into()),
                        Val::Int(o.at),
                        Val::Int(o.at),
                        Val::Int(o.at),
                    ]
                })
                .collect(),
        )
        .await?;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO search_index (card_id, pipe, body)",
            "",
            batch
                .search
                .into_iter()
                .map(|s| vec![Val::Int(s.card_id), Val::Text(s.pipe), Val::Text(s.body)])
                .collect(),
        )
        .await?;
        insert_many(
            conn,
            self.backend,
            "INSERT INTO alerts (at, kind, detail)",
            "",
            batch
                .alerts
                .into_iter()
                .map(|a| vec![Val::Int(a.at), Val::Text(a.kind), Val::Text(a.detail)])
                .collect(),
        )
        .await?;
        // The consumed bodies stop waiting, then the notes of flagged ones.
        match self.backend {
            Backend::Sqlite => {
                // The oldest waiting bodies, so the cursor moves to the last.
                if let Some(last) = batch.inbox_done.iter().map(|(id, _)| *id).max() {
                    sqlx::query("UPDATE inbox_cursor SET last_done = MAX(last_done, $1)")
                        .bind(last)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Backend::Postgres => {
                // One statement: ids are our own integers, written as literals.
                let ids: Vec<String> = batch
                    .inbox_done
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect();
                for ids in ids.chunks(1_000) {
                    sqlx::query(&format!(
                        "DELETE FROM wa_inbox_pending WHERE id IN ({})",
                        ids.join(", ")
                    ))
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        insert_many(
            conn,
            self.backend,
            "INSERT INTO wa_inbox_notes (inbox_id, note)",
            // A body processed again after a crash notes it again.
            "ON CONFLICT (inbox_id) DO UPDATE SET note = excluded.note",
            batch
                .inbox_done
                .into_iter()
                .filter_map(|(id, note)| Some(vec![Val::Int(id), Val::Text(note?)]))
                .collect(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// From now on the server copies SQLite's write-ahead log into the
    /// database file itself ([`Store::checkpoint`], from a reader
    /// connection), instead of the writer doing it inside whichever commit
    /// crosses 1,000 pages — a pause of 100 ms and more for the webhooks
    /// waiting behind it. Nothing on PostgreSQL.
    pub async fn take_over_checkpoints(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            self.manual_checkpoints
                .store(true, std::sync::atomic::Ordering::SeqCst);
            for writer in [&self.writer, &self.inbox.writer] {
                sqlx::query("PRAGMA wal_autocheckpoint = 0")
                    .execute(writer)
                    .await?;
            }
        }
        Ok(())
    }

    /// Copies the write-ahead log into the database file without blocking
    /// the writer (SQLite's PASSIVE checkpoint). Nothing on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            for readers in [&self.pool, &self.inbox.pool] {
                sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(readers)
                    .await?;
            }
        }
        Ok(())
    }

    // ---- delivery statuses ------------------------------------------------

    /// Applies a delivery status to our message with that wamid: statuses only
    /// move up (sent < delivered < read < played); `failed` only lands on a
    /// message not yet delivered. A status for a wamid we have not recorded
    /// yet is parked and applied when the send is recorded.
    pub async fn apply_status(&self, s: &StatusRow) -> Result<StatusOutcome> {
        let mut tx = self.writer.begin().await?;
        let new = sqlx::query(
            "INSERT INTO wa_statuses (wamid, status, at, reason, callback) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (wamid, status) DO NOTHING",
        )
        .bind(&s.wamid)
        .bind(&s.status)
        .bind(s.at)
        .bind(&s.reason)
        .bind(&s.callback)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if new == 0 {
            tx.commit().await?;
            return Ok(StatusOutcome::Duplicate);
        }
        let outcome = raise_status(&mut tx, &s.wamid, &s.status, s.reason.as_deref()).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// A message's delivery status and its reason, by wamid.
    pub async fn message_status(&self, wamid: &str) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query("SELECT status, status_reason FROM messages WHERE wamid = $1")
            .bind(wamid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get::<Option<String>, _>("status")?
                    .unwrap_or_default(),
                r.try_get("status_reason")?,
            )),
            None => None,
        })
    }

    // ---- the outbox -------------------------------------------------------

    /// Claims up to `limit` messages due at `now` for sending until
    /// `claim_until`. Two servers never claim the same row. A row whose
    /// earlier claim ran out while `sending` (its sender died between asking
    /// Meta and recording the answer) comes back marked uncertain.
    pub async fn claim_outbox(
        &self,
        now: i64,
        claim_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let sql = claim_sql(self.backend);
        let rows = sqlx::query(&sql)
            .bind(claim_until)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await?;
        let mut out: Vec<OutboxRow> = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    card_id: r.try_get("card_id")?,
                    message_key: r.try_get("message_key")?,
                    phone_number_id: r.try_get("phone_number_id")?,
                    recipient: r.try_get("recipient")?,
                    request: r.try_get("request")?,
                    attempts: r.try_get("attempts")?,
                    uncertain: r.try_get::<i64, _>("uncertain")? != 0,
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// Meta accepted an outbox message (its answer, or a status webhook
    /// carrying the row's id): record its wamid on the row and the card's
    /// message, and apply any status that arrived before. A row already
    /// accepted is left as it is.
    pub async fn outbox_accepted(&self, id: i64, wamid: &str, now: i64) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(
            "UPDATE outbox SET state = 'accepted', wamid = $1, updated_at = $2, claimed_until = NULL \
             WHERE id = $3 AND state <> 'accepted' RETURNING card_id, message_key",
        )
        .bind(wamid)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let card: i64 = row.try_get("card_id")?;
            let key: String = row.try_get("message_key")?;
            sqlx::query(
                "UPDATE messages SET wamid = $1, status = 'accepted' WHERE card_id = $2 AND key = $3 AND wamid IS NULL",
            )
            .bind(wamid)
            .bind(card)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
            let parked =
                sqlx::query("SELECT status, reason FROM wa_statuses WHERE wamid = $1 ORDER BY at")
                    .bind(wamid)
                    .fetch_all(&mut *tx)
                    .await?;
            for p in parked {
                let status: String = p.try_get("status")?;
                let reason: Option<String> = p.try_get("reason")?;
                raise_status(&mut tx, wamid, &status, reason.as_deref()).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A send failed for a reason that may pass: try again at `next_at`.
    pub async fn outbox_retry(
        &self,
        id: i64,
        next_at: i64,
        code: Option<i64>,
        error: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'retry', next_attempt_at = $1, last_error_code = $2, last_error = $3, \
             updated_at = $4, claimed_until = NULL WHERE id = $5",
        )
        .bind(next_at)
        .bind(code)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// We cannot know whether Meta got it (a timeout after the request
    /// left): keep it aside as uncertain until `next_at`, when it may be sent
    /// once more unless a status for it arrived meanwhile.
    pub async fn outbox_unknown(&self, id: i64, next_at: i64, error: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET state = 'unknown', uncertain = 1, next_attempt_at = $1, last_error = $2, \
             updated_at = $3, claimed_until = NULL WHERE id = $4",
        )
        .bind(next_at)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A send failed for good: the row and the card's message say why.
    pub async fn outbox_failed(
        &self,
        id: i64,
        code: Option<i64>,
        error: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(
            "UPDATE outbox SET state = 'failed', last_error_code = $1, last_error = $2, updated_at = $3, \
             claimed_until = NULL WHERE id = $4 RETURNING card_id, message_key",
        )
        .bind(code)
        .bind(error)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            let card: i64 = row.try_get("card_id")?;
            let key: String = row.try_get("message_key")?;
            sqlx::query(
                "UPDATE messages SET status = 'failed', status_rank = $4, status_reason = $1 WHERE card_id = $2 AND key = $3",
            )
            .bind(error)
            .bind(card)
            .bind(&key)
            .bind(FAILED_RANK)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Gives back every claim (a new engine holder starts): rows left
    /// `sending` by a holder that died come back uncertain at once.
    pub async fn release_claims(&self, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE outbox SET claimed_until = $1 WHERE state = 'sending' AND claimed_until > $1",
        )
        .bind(now - 1)
        .execute(&self.writer)
        .await?
        .rows_affected())
    }

    /// Which card message has this wamid: `(card, key)`.
    pub async fn message_owner(&self, wamid: &str) -> Result<Option<(i64, String)>> {
        let row = sqlx::query("SELECT card_id, key FROM messages WHERE wamid = $1")
            .bind(wamid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get("card_id")?, r.try_get("key")?)),
            None => None,
        })
    }

    /// Marks a card's unread customer messages as read by the team and
    /// returns the newest one's wamid (WhatsApp's mark-as-read covers the
    /// earlier ones too); `None` when there was nothing unread.
    pub async fn mark_inbound_read(&self, card: i64) -> Result<Option<String>> {
        let mut tx = self.writer.begin().await?;
        let newest = sqlx::query(
            "SELECT wamid FROM messages WHERE card_id = $1 AND direction = 'in' AND status IS NULL \
             AND wamid IS NOT NULL ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(card)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = newest else {
            tx.commit().await?;
            return Ok(None);
        };
        sqlx::query(
            "UPDATE messages SET status = 'read' WHERE card_id = $1 AND direction = 'in' AND status IS NULL",
        )
        .bind(card)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(row.try_get("wamid")?))
    }

    /// Notes something about a message's delivery (shown with its status).
    pub async fn note_message(&self, card: i64, key: &str, note: &str) -> Result<()> {
        sqlx::query("UPDATE messages SET status_reason = $1 WHERE card_id = $2 AND key = $3")
            .bind(note)
            .bind(card)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records an alert on its own.
    pub async fn alert(&self, alert: &AlertRow) -> Result<()> {
        sqlx::query("INSERT INTO alerts (at, kind, detail) VALUES ($1, $2, $3)")
            .bind(alert.at)
            .bind(&alert.kind)
            .bind(&alert.detail)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Outbox rows by state, for metrics and tests.
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// How many messages wait to go (queued, to retry, uncertain, being
    /// sent): counted on the outbox's partial index, so the sent history,
    /// which only grows, is never read.
    pub async fn outbox_waiting(&self) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM outbox WHERE state IN ('queued', 'retry', 'unknown', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// One outbox row's state, attempts and whether it is uncertain.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<(String, i64, bool)>> {
        let row = sqlx::query("SELECT state, attempts, uncertain FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((
                r.try_get("state")?,
                r.try_get("attempts")?,
                r.try_get::<i64, _>("uncertain")? != 0,
            )),
            None => None,
        })
    }

    /// When the next outbox row falls due, if any waits.
    pub async fn next_outbox_due(&self) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN state = 'sending' THEN claimed_until ELSE next_attempt_at END) AS due \
             FROM outbox WHERE state IN ('queued', 'retry', 'unknown', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("due")?)
    }

    // ---- leases -----------------------------------------------------------

    /// Takes or renews the lease `name` for `holder` until `until`; true when
    /// `holder` has it (nobody else holds an unexpired one).
    pub async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leases.holder = excluded.holder OR leases.until < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives a lease back (on shutdown), so another server may take it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    // ---- reading cards ----------------------------------------------------

    /// One card.
    pub async fn card(&self, id: i64) -> Result<Option<CardRow>> {
        let row = sqlx::query(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(CardRow::from_row).transpose()
    }

    /// A card by its pipe and number.
    pub async fn card_by_number(&self, pipe: &str, number: i64) -> Result<Option<CardRow>> {
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE pipe = $1 AND number = $2"
        ))
        .bind(pipe)
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(CardRow::from_row).transpose()
    }

    /// Cards of a pipe, filtered, in id order after the cursor.
    pub async fn cards(&self, pipe: &str, filter: &CardFilter, limit: i64) -> Result<Vec<CardRow>> {
        let mut sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE pipe = $1 AND id > $2");
        let mut n = 2;
        let mut texts = Vec::new();
        for (column, value) in [
            ("status", &filter.status),
            ("assignee", &filter.assignee),
            ("sla_state", &filter.sla),
        ] {
            if let Some(v) = value {
                n += 1;
                sql.push_str(&format!(" AND {column} = ${n}"));
                texts.push(v.clone());
            }
        }
        if filter.unassigned {
            sql.push_str(" AND assignee IS NULL");
        }
        if let Some(ids) = &filter.ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            sql.push_str(&format!(" AND id IN ({})", list.join(", ")));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", n + 1));
        let mut q = sqlx::query(&sql)
            .bind(pipe)
            .bind(filter.after.unwrap_or(-1));
        for t in texts {
            q = q.bind(t);
        }
        let rows = q.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(CardRow::from_row).collect()
    }

    /// How many cards each status of a pipe holds.
    pub async fn count_by_status(&self, pipe: &str) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM cards WHERE pipe = $1 GROUP BY status")
                .bind(pipe)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    /// A pipe's figures for the dashboard, computed in the database from
    /// indexes alone (`0004_dashboard.sql`): open work per team, and over the
    /// period from `since` (ms) cards opened and resolved per day, SLA
    /// compliance, first-response and resolution times. Days are counted
    /// from the epoch after adding `offset` (ms), the pipe's time zone.
    pub async fn pipe_stats(&self, pipe: &str, since: i64, offset: i64) -> Result<PipeStats> {
        // Five independent reads, run side by side on the read connections.
        let teams = sqlx::query(
            "SELECT team, COUNT(*) AS open, \
               SUM(CASE WHEN assignee IS NOT NULL THEN 1 ELSE 0 END) AS in_progress, \
               SUM(CASE WHEN last_responder = 'customer' THEN 1 ELSE 0 END) AS waiting, \
               SUM(CASE WHEN sla_state = 'breached' THEN 1 ELSE 0 END) AS overdue \
             FROM cards WHERE pipe = $1 AND open = 1 GROUP BY team ORDER BY team",
        )
        .bind(pipe)
        .fetch_all(&self.pool);
        let opened = sqlx::query(
            "SELECT (created_at + $3) / 86400000 AS day, COUNT(*) AS n, \
               SUM(CASE WHEN sla_state <> 'none' THEN 1 ELSE 0 END) AS with_sla, \
               SUM(CASE WHEN sla_state = 'breached' THEN 1 ELSE 0 END) AS breached \
             FROM cards WHERE pipe = $1 AND created_at >= $2 \
             GROUP BY (created_at + $3) / 86400000 ORDER BY day",
        )
        .bind(pipe)
        .bind(since)
        .bind(offset)
        .fetch_all(&self.pool);
        let resolved = sqlx::query(
            "SELECT (closed_at + $3) / 86400000 AS day, COUNT(*) AS n FROM cards \
             WHERE pipe = $1 AND closed_at >= $2 GROUP BY (closed_at + $3) / 86400000 ORDER BY day",
        )
        .bind(pipe)
        .bind(since)
        .bind(offset)
        .fetch_all(&self.pool);
        // The newest 10,000 are plenty for a median and a 90th percentile
        // and keep a busy pipe's dashboard fast.
        let first = sqlx::query(
            "SELECT first_reply_at - created_at AS took FROM cards \
             WHERE pipe = $1 AND created_at >= $2 AND first_reply_at IS NOT NULL \
             ORDER BY created_at DESC LIMIT 10000",
        )
        .bind(pipe)
        .bind(since)
        .fetch_all(&self.pool);
        let resolution = sqlx::query(
            "SELECT closed_at - created_at AS took FROM cards \
             WHERE pipe = $1 AND closed_at >= $2 ORDER BY closed_at DESC LIMIT 10000",
        )
        .bind(pipe)
        .bind(since)
        .fetch_all(&self.pool);
        let (teams, opened, resolved, first, resolution) =
            tokio::try_join!(teams, opened, resolved, first, resolution)?;
        let teams = teams
            .iter()
            .map(|r| {
                let n =
                    |c: &str| -> Result<i64> { Ok(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0)) };
                Ok(TeamWork {
                    team: r.try_get("team")?,
                    open: n("open")?,
                    in_progress: n("in_progress")?,
                    waiting: n("waiting")?,
                    overdue: n("overdue")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut with_sla = 0;
        let mut breached = 0;
        let mut opened_per_day = Vec::new();
        for r in &opened {
            with_sla += r.try_get::<Option<i64>, _>("with_sla")?.unwrap_or(0);
            breached += r.try_get::<Option<i64>, _>("breached")?.unwrap_or(0);
            opened_per_day.push((r.try_get("day")?, r.try_get("n")?));
        }
        let resolved_per_day = resolved
            .iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
            .collect::<Result<Vec<(i64, i64)>>>()?;
        let column = |rows: Vec<AnyRow>| -> Result<Vec<i64>> {
            rows.iter()
                .map(|r| Ok(r.try_get("took")?))
                .collect::<Result<Vec<i64>>>()
        };
        Ok(PipeStats {
            teams,
            with_sla,
            breached,
            opened_per_day,
            resolved_per_day,
            first_responses: column(first)?,
            resolutions: column(resolution)?,
        })
    }

    /// How many open cards a pipe has.
    pub async fn count_open(&self, pipe: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM cards WHERE pipe = $1 AND open = 1")
                .bind(pipe)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// A card's messages, in time order.
    pub async fn messages(&self, card: i64) -> Result<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT id, key, wamid, direction, type, text, author, status, status_reason, at, raw \
             FROM messages WHERE card_id = $1 ORDER BY at, id",
        )
        .bind(card)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredMessage {
                    id: r.try_get("id")?,
                    key: r.try_get("key")?,
                    wamid: r.try_get("wamid")?,
                    direction: r.try_get("direction")?,
                    kind: r.try_get("type")?,
                    text: r.try_get("text")?,
                    author: r.try_get("author")?,
                    status: r.try_get("status")?,
                    status_reason: r.try_get("status_reason")?,
                    at: r.try_get("at")?,
                    raw: r.try_get("raw")?,
                })
            })
            .collect()
    }

    /// A card's history, oldest first.
    pub async fn history(&self, card: i64) -> Result<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT card_id, at, what, cause FROM history WHERE card_id = $1 ORDER BY id",
        )
        .bind(card)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    card_id: r.try_get("card_id")?,
                    at: r.try_get("at")?,
                    what: r.try_get("what")?,
                    cause: r.try_get("cause")?,
                })
            })
            .collect()
    }

    /// Cards of a pipe whose messages, contact or fields match the words of
    /// `query` (all of them), at most `limit` of them. Matches are not
    /// ranked: the caller orders the cards (the board by card, newest
    /// first), so the database can stop at `limit`.
    pub async fn search(&self, pipe: &str, query: &str, limit: i64) -> Result<Vec<i64>> {
        let words: Vec<String> = query
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let rows = match self.backend {
            Backend::Sqlite => {
                // Each word quoted: the person's text is never FTS syntax.
                let fts: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
                sqlx::query(
                    "SELECT DISTINCT card_id FROM search_index WHERE search_index MATCH $1 AND pipe = $2 LIMIT $3",
                )
                .bind(fts.join(" "))
                .bind(pipe)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            Backend::Postgres => {
                sqlx::query(
                    "SELECT DISTINCT card_id FROM search_index WHERE tsv @@ plainto_tsquery('simple', $1) AND pipe = $2 LIMIT $3",
                )
                .bind(words.join(" "))
                .bind(pipe)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut ids: Vec<i64> = rows
            .iter()
            .map(|r| Ok(r.try_get("card_id")?))
            .collect::<Result<_>>()?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Alerts, newest first.
    pub async fn alerts(&self, limit: i64) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query("SELECT at, kind, detail FROM alerts ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertRow {
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

/// The columns [`CardRow::from_row`] reads.
const CARD_COLUMNS: &str =
    "id, pipe, number, contact, status, open, assignee, team, sla_state, sla_due_at, \
     last_responder, template_needed, preview, view, created_at, updated_at, first_reply_at, closed_at";

/// The SHA-256 of a body, in hex.
pub fn body_hash(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// Rank of a delivery status: statuses only ever move up.
pub fn status_rank(status: &str) -> i64 {
    match status {
        "accepted" => 0,
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "played" => 4,
        "failed" => FAILED_RANK,
        _ => -1,
    }
}

const FAILED_RANK: i64 = 10;

/// Moves a message's status up to `status` where the ranks allow it.
async fn raise_status(
    conn: &mut AnyConnection,
    wamid: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<StatusOutcome> {
    let rank = status_rank(status);
    if rank < 0 {
        // An unknown status is kept in wa_statuses, not shown as delivery.
        return Ok(StatusOutcome::Stale);
    }
    let n = sqlx::query(
        "UPDATE messages SET status = $1, status_rank = $2, status_reason = $3 \
         WHERE wamid = $4 AND (($2 = $5 AND status_rank <= 1) OR ($2 < $5 AND status_rank < $2))",
    )
    .bind(status)
    .bind(rank)
    .bind(reason)
    .bind(wamid)
    .bind(FAILED_RANK)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n > 0 {
        return Ok(StatusOutcome::Applied);
    }
    let known = sqlx::query("SELECT 1 AS one FROM messages WHERE wamid = $1")
        .bind(wamid)
        .fetch_optional(&mut *conn)
        .await?
        .is_some();
    Ok(if known {
        StatusOutcome::Stale
    } else {
        StatusOutcome::Parked
    })
}

/// One value to bind.
enum Val {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bytes(Vec<u8>),
}

/// Inserts rows, `head` (`INSERT INTO table (columns)`) then `tail` (an
/// `ON CONFLICT` clause or nothing), with as few statements as the
/// databases allow.
///
/// On PostgreSQL the rows are one JSON parameter, in one statement whose
/// text never changes: a `VALUES` list with a parameter per value is a new
/// statement for every number of rows, and PostgreSQL parses and plans
/// each afresh (≈ 3 ms for 300 rows of 12 values, the engine's usual batch).
/// On SQLite, where preparing is cheap, `head VALUES (…), (…) tail`.
async fn insert_many(
    conn: &mut AnyConnection,
    backend: Backend,
    head: &str,
    tail: &str,
    rows: Vec<Vec<Val>>,
) -> Result<u64> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(0);
    };
    // Bytes (webhook bodies) stay binary parameters: as JSON they would be
    // hex text, twice their size, decoded again.
    let bytes = rows.iter().flatten().any(|v| matches!(v, Val::Bytes(_)));
    if backend == Backend::Postgres && !bytes {
        if let Some((sql, json)) = json_insert(head, tail, &rows) {
            return Ok(sqlx::query(&sql)
                .bind(json)
                .execute(&mut *conn)
                .await?
                .rows_affected());
        }
    }
    // SQLite allows 32,766 parameters, PostgreSQL 65,535; stay well under.
    let per_statement = (8_000 / width).max(1);
    let mut affected = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(per_statement).collect();
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * width * 5);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..width {
                if j > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                // SQLite binds `?` by position in constant time; a `$N`
                // costs a search through every parameter name (quadratic
                // on thousands of parameters).
                if backend == Backend::Sqlite {
                    sql.push('?');
                } else {
                    sql.push('$');
                    sql.push_str(&n.to_string());
                }
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    Val::Int(i) => q.bind(i),
                    Val::OptInt(i) => q.bind(i),
                    Val::Text(t) => q.bind(t),
                    Val::OptText(t) => q.bind(t),
                    Val::Bytes(b) => q.bind(b),
                };
            }
        }
        affected += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(affected)
}

/// The sender's claim ([`Store::claim_outbox`]): `$1` claimed until, `$2`
/// now, `$3` how many.
fn claim_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    // The first condition is `outbox_due`'s, word for word: only so do both
    // databases see that the index holds every row wanted, and read the
    // first due rows in order from it instead of every row ever sent
    // (SQLite) or every waiting row (PostgreSQL), sorted.
    format!(
        "UPDATE outbox SET \
           uncertain = CASE WHEN state = 'sending' THEN 1 ELSE uncertain END, \
           state = 'sending', claimed_until = $1, attempts = attempts + 1, updated_at = $2 \
         WHERE id IN (SELECT id FROM outbox \
           WHERE state IN ('queued', 'retry', 'unknown', 'sending') AND next_attempt_at <= $2 \
             AND (state IN ('queued', 'retry', 'unknown') OR (state = 'sending' AND claimed_until < $2)) \
           ORDER BY next_attempt_at, id LIMIT $3 {lock}) \
         RETURNING id, card_id, message_key, phone_number_id, recipient, request, attempts, uncertain"
    )
}

/// [`insert_many`]'s statement and parameter on PostgreSQL: the rows as a
/// JSON array of objects keyed by column, turned back into rows of the
/// table's type in their order (the order of `engine_events` matters).
/// `None` when `head` is not of that form.
fn json_insert(head: &str, tail: &str, rows: &[Vec<Val>]) -> Option<(String, String)> {
    let (table, columns) = head
        .trim()
        .strip_prefix("INSERT INTO ")
        .and_then(|rest| rest.split_once('('))
        .map(|(table, columns)| {
            let columns: Vec<&str> = columns
                .trim_end()
                .trim_end_matches(')')
                .split(',')
                .map(str::trim)
                .collect();
            (table.trim(), columns)
        })?;
    let selected: Vec<String> = columns.iter().map(|c| format!("r.{c}")).collect();
    let sql = format!(
        "{head} SELECT {} FROM json_populate_recordset(NULL::{table}, $1::json) \
         WITH ORDINALITY AS r ORDER BY r.ordinality {tail}",
        selected.join(", ")
    );
    let mut json = Vec::with_capacity(rows.len() * 64);
    json.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.push(b'{');
        for (j, (column, value)) in columns.iter().zip(row).enumerate() {
            if j > 0 {
                json.push(b',');
            }
            json.push(b'"');
            json.extend_from_slice(column.as_bytes());
            json.extend_from_slice(b"\":");
            let text = |json: &mut Vec<u8>, t: &str| {
                // Writing a &str into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *json, t);
            };
            match value {
                Val::Int(n) | Val::OptInt(Some(n)) => {
                    json.extend_from_slice(n.to_string().as_bytes())
                }
                Val::Text(t) | Val::OptText(Some(t)) => text(&mut json, t),
                Val::OptInt(None) | Val::OptText(None) => json.extend_from_slice(b"null"),
                // bytea's text form.
                Val::Bytes(b) => text(&mut json, &format!("\\x{}", hex::encode(b))),
            }
        }
        json.push(b'}');
    }
    json.push(b']');
    // serde_json writes UTF-8, and the rest is ASCII.
    let json = String::from_utf8(json)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Some((sql, json))
}

pub mod testing {
    //! Fresh databases for tests: a SQLite file in a temporary folder, or a
    //! new PostgreSQL database on the server named by
    //! `SWITCHBOARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`).

    use super::{Backend, Result, Store};
    use std::sync::atomic::{AtomicU64, Ordering};

    static COUNTER: AtomicU64 = AtomicU64::new(0);

    /// A database that exists for one test.
    pub struct TestDb {
        /// The store on it (migrated).
        pub store: Store,
        /// Its URL.
        pub url: String,
        drop_sql: Option<(String, String)>,
        _dir: Option<std::path::PathBuf>,
    }

    /// The PostgreSQL server tests use.
    pub fn postgres_server() -> String {
        std::env::var("SWITCHBOARD_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_string())
    }

    /// A unique name for this process and call.
    pub fn unique_name(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!(
            "{prefix}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        )
    }

    impl TestDb {
        /// A new, migrated, empty database of that kind.
        pub async fn new(backend: Backend) -> Result<TestDb> {
            let db = TestDb::empty(backend).await?;
            db.store.migrate().await?;
            Ok(db)
        }

        /// A new database with the migrations up to `version` applied only,
        /// as a server of that time left it: for tests of what later
        /// migrations do to existing rows.
        pub async fn at_version(backend: Backend, version: i64) -> Result<TestDb> {
            let db = TestDb::empty(backend).await?;
            // The migration files of that time, copied into a folder of
            // their own (sqlx runs every migration of a folder it is given).
            let dialect = match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            };
            let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../migrations")
                .join(dialect);
            let dir = std::env::temp_dir().join(unique_name("switchboard_migrations"));
            let io = |e| super::StoreError::Query(sqlx::Error::Io(e));
            std::fs::create_dir_all(&dir).map_err(io)?;
            for entry in std::fs::read_dir(&all).map_err(io)? {
                let path = entry.map_err(io)?.path();
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let number = name.split('_').next().and_then(|n| n.parse::<i64>().ok());
                if number.is_some_and(|n| n <= version) {
                    std::fs::copy(&path, dir.join(name)).map_err(io)?;
                }
            }
            let older = sqlx::migrate::Migrator::new(dir.as_path()).await?;
            let _ = std::fs::remove_dir_all(&dir);
            older.run(&db.store.writer).await?;
            Ok(db)
        }

        /// Runs SQL as it is (test set-up of old rows).
        pub async fn execute(&self, sql: &str) -> Result<()> {
            sqlx::raw_sql(sql).execute(&self.store.writer).await?;
            Ok(())
        }

        /// A transaction on the database's writer that has written (and so,
        /// on SQLite, holds the file's write lock) until it is dropped: an
        /// engine batch in the middle of its work.
        pub async fn writing(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
            let mut tx = self.store.writer.begin().await?;
            sqlx::query("INSERT INTO alerts (at, kind, detail) VALUES (0, 'test', 'held')")
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }

        /// Marks every waiting webhook body processed, as an engine batch
        /// with nothing else in it would; returns how many there were.
        pub async fn consume_inbox(&self) -> Result<usize> {
            let pending = self.store.pending_inbox(10_000).await?;
            self.store
                .commit(super::Batch {
                    inbox_done: pending.iter().map(|r| (r.id, None)).collect(),
                    ..super::Batch::default()
                })
                .await?;
            Ok(pending.len())
        }

        /// SQLite's plan for the sender's claim, a line per step.
        pub async fn claim_plan(&self) -> Result<Vec<String>> {
            use sqlx::Row;
            let sql = format!("EXPLAIN QUERY PLAN {}", super::claim_sql(Backend::Sqlite));
            let rows = sqlx::query(&sql)
                .bind(0_i64)
                .bind(0_i64)
                .bind(1_i64)
                .fetch_all(&self.store.pool)
                .await?;
            rows.iter()
                .map(|r| Ok(r.try_get::<String, _>("detail")?))
                .collect()
        }

        /// SQLite's `PRAGMA synchronous` on the writer connection (2 is FULL).
        pub async fn writer_synchronous(&self) -> Result<i64> {
            use sqlx::Row;
            let row = sqlx::query("PRAGMA synchronous")
                .fetch_one(&self.store.writer)
                .await?;
            Ok(row.try_get(0)?)
        }

        /// A new database with no tables.
        async fn empty(backend: Backend) -> Result<TestDb> {
            match backend {
                Backend::Sqlite => {
                    let dir = std::env::temp_dir().join(unique_name("switchboard"));
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| super::StoreError::Query(sqlx::Error::Io(e)))?;
                    let url = format!("sqlite://{}", dir.join("test.db").display());
                    let store = Store::connect(&url).await?;
                    Ok(TestDb {
                        store,
                        url,
                        drop_sql: None,
                        _dir: Some(dir),
                    })
                }
                Backend::Postgres => {
                    let server = postgres_server();
                    let name = unique_name("sbtest");
                    let admin_url = format!("{server}/postgres");
                    let admin = Store::connect(&admin_url).await?;
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(&admin.pool)
                        .await?;
                    admin.close().await;
                    let url = format!("{server}/{name}");
                    let store = Store::connect(&url).await?;
                    Ok(TestDb {
                        store,
                        url,
                        drop_sql: Some((
                            admin_url,
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        )),
                        _dir: None,
                    })
                }
            }
        }

        /// Closes the store and removes the database.
        pub async fn finish(self) -> Result<()> {
            self.store.close().await;
            if let Some((admin_url, sql)) = &self.drop_sql {
                let admin = Store::connect(admin_url).await?;
                sqlx::query(sql).execute(&admin.pool).await?;
                admin.close().await;
            }
            if let Some(dir) = &self._dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{inbox_file, json_insert, Val};

    #[test]
    fn the_inbox_file_sits_beside_the_database_with_its_parameters() {
        let cases = [
            (
                "sqlite://switchboard.db?mode=rwc",
                "switchboard-inbox.db",
                "sqlite://switchboard-inbox.db?mode=rwc",
            ),
            (
                "sqlite:///var/lib/sb/data.sqlite",
                "/var/lib/sb/data-inbox.sqlite",
                "sqlite:///var/lib/sb/data-inbox.sqlite",
            ),
            (
                "sqlite:./v1.2/db",
                "./v1.2/db-inbox",
                "sqlite:./v1.2/db-inbox",
            ),
            (
                "sqlite://.hidden",
                ".hidden-inbox",
                "sqlite://.hidden-inbox",
            ),
        ];
        for (url, file, inbox_url) in cases {
            assert_eq!(
                inbox_file(url),
                (file.to_string(), inbox_url.to_string()),
                "{url}"
            );
        }
    }

    #[test]
    fn postgres_inserts_name_the_table_and_carry_the_rows_as_json() {
        let (sql, json) = json_insert(
            "INSERT INTO wa_inbox (body_hash, body, received_at)",
            "ON CONFLICT (body_hash) DO NOTHING",
            &[
                vec![
                    Val::Text("h\"1".into()),
                    Val::Bytes(vec![0, 255]),
                    Val::Int(-3),
                ],
                vec![Val::OptText(None), Val::Bytes(vec![]), Val::OptInt(None)],
            ],
        )
        .expect("a head of the expected form");
        assert_eq!(
            sql,
            "INSERT INTO wa_inbox (body_hash, body, received_at) \
             SELECT r.body_hash, r.body, r.received_at \
             FROM json_populate_recordset(NULL::wa_inbox, $1::json) \
             WITH ORDINALITY AS r ORDER BY r.ordinality ON CONFLICT (body_hash) DO NOTHING"
        );
        assert_eq!(
            json,
            r#"[{"body_hash":"h\"1","body":"\\x00ff","received_at":-3},{"body_hash":null,"body":"\\x","received_at":null}]"#
        );
        assert!(json_insert("UPDATE cards SET x = 1", "", &[vec![Val::Int(1)]]).is_none());
    }
}

-- SQLite's inbox file: the raw webhook log, beside the database
-- (`switchboard-inbox.db` beside `switchboard.db`), with a writer of its own
-- so that storing a webhook body never waits for the engine's transactions.
-- Which bodies the engine has processed is `inbox_cursor` in the database.
CREATE TABLE wa_inbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- commit order: one writer per file
    body_hash     TEXT    NOT NULL UNIQUE,            -- sha-256 of the raw body: identical retries are one row
    body          BLOB    NOT NULL,
    received_at   INTEGER NOT NULL
);

-- The token this file shares with its database (Store::pair_inbox).
CREATE TABLE inbox_identity (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    token  TEXT    NOT NULL
);

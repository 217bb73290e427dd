-- Webhook bodies move to a file of their own, the inbox file
-- (migrations/sqlite-inbox), with a writer of its own: storing a body no
-- longer waits for an engine transaction on this database's one writer.
-- The server copies the existing bodies there after this migration and then
-- drops `wa_inbox` here (Store::move_inbox_out).

-- Why a processed body was flagged (bad JSON, an unknown number …).
CREATE TABLE wa_inbox_notes (
    inbox_id  INTEGER PRIMARY KEY,
    note      TEXT    NOT NULL
);
INSERT INTO wa_inbox_notes (inbox_id, note) SELECT id, note FROM wa_inbox WHERE note IS NOT NULL;

-- The last body the engine has processed; every later one waits. SQLite
-- numbers bodies in commit order, so one number says it all. The engine
-- processes bodies in order, so the waiting ones follow the processed ones.
-- `inbox_token` is the random token this database and its inbox file share
-- (Store::pair_inbox): a database never reads another one's inbox.
CREATE TABLE inbox_cursor (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    last_done    INTEGER NOT NULL,
    inbox_token  TEXT
);
INSERT INTO inbox_cursor (id, last_done) VALUES (1, COALESCE(
    (SELECT MIN(id) - 1 FROM wa_inbox_pending),
    (SELECT MAX(id) FROM wa_inbox),
    0));

DROP TRIGGER wa_inbox_pending_add;
DROP TABLE wa_inbox_pending;

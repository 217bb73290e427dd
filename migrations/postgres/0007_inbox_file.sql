-- The notes on processed webhook bodies move to a table of their own, as on
-- SQLite (where the bodies moved to a file of their own): the engine writes
-- a note without touching the body's row.
CREATE TABLE wa_inbox_notes (
    inbox_id  BIGINT PRIMARY KEY,
    note      TEXT   NOT NULL
);
INSERT INTO wa_inbox_notes (inbox_id, note) SELECT id, note FROM wa_inbox WHERE note IS NOT NULL;
ALTER TABLE wa_inbox DROP COLUMN note;

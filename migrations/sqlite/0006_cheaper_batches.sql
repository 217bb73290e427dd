-- Which webhook bodies wait for the processor, as a narrow table of ids.
-- Before, the processor marked each consumed body by updating its
-- `wa_inbox` row (`processed_at`), which rewrote the whole row (the body
-- included) and its indexes once more per message; deleting a narrow row
-- costs a fraction of that. A body is waiting while its id is here.
CREATE TABLE wa_inbox_pending (
    id INTEGER PRIMARY KEY
);

-- Every new body waits; a retry of a stored body inserts nothing, so adds
-- nothing here either.
CREATE TRIGGER wa_inbox_pending_add AFTER INSERT ON wa_inbox
BEGIN
    INSERT INTO wa_inbox_pending (id) VALUES (new.id);
END;

INSERT INTO wa_inbox_pending (id) SELECT id FROM wa_inbox WHERE processed_at IS NULL;
DROP INDEX wa_inbox_waiting;
ALTER TABLE wa_inbox DROP COLUMN processed_at;

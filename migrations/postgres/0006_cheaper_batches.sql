-- Which webhook bodies wait for the processor, as a narrow table of ids.
-- Before, the processor marked each consumed body by updating its
-- `wa_inbox` row (`processed_at`), which wrote a new version of the whole
-- row (the body included) and new entries in its indexes once more per
-- message; deleting a narrow row costs a fraction of that. A body is
-- waiting while its id is here.
CREATE TABLE wa_inbox_pending (
    id BIGINT PRIMARY KEY
);

-- Every new body waits; a retry of a stored body inserts nothing, so adds
-- nothing here either. One statement-level insert per multi-row insert.
CREATE FUNCTION wa_inbox_pending_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wa_inbox_pending (id) SELECT id FROM added;
    RETURN NULL;
END
$$;
CREATE TRIGGER wa_inbox_pending_add AFTER INSERT ON wa_inbox
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION wa_inbox_pending_add();

INSERT INTO wa_inbox_pending (id) SELECT id FROM wa_inbox WHERE processed_at IS NULL;
DROP INDEX wa_inbox_waiting;
ALTER TABLE wa_inbox DROP COLUMN processed_at;

-- Room in each page of `cards` for the new version of a changed card, so
-- most changes (a new message's preview, its time) are heap-only updates
-- that touch none of the table's seven indexes. Measured in the load
-- benchmark: 2 % of card updates were heap-only before, 99 % after.
ALTER TABLE cards SET (fillfactor = 50);

-- Only the engine writes messages and history, always in the transaction
-- that writes their card, so these checks never fail; each cost a lookup
-- and a share lock on the card row (a write to it) per inserted row.
ALTER TABLE messages DROP CONSTRAINT messages_card_id_fkey;
ALTER TABLE history DROP CONSTRAINT history_card_id_fkey;

-- The sender claims the first due messages in (next_attempt_at, id) order:
-- with the id in the index PostgreSQL reads just those from it, instead of
-- every waiting message, sorted (10,000 and more during a burst of replies
-- to a number limited to 80 per second). SQLite's index already ends with
-- the row id.
CREATE INDEX outbox_due_order ON outbox (next_attempt_at, id)
    WHERE state IN ('queued', 'retry', 'unknown', 'sending');
DROP INDEX outbox_due;

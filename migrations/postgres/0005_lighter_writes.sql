-- The 24-hour window lives on each card (its JSON's `window_closes_at`),
-- kept by the engine; the contact row now changes only when the contact
-- does (name, phone, identifiers), not with every message.
ALTER TABLE contacts DROP COLUMN window_closes_at;

-- Unused since boards read `cards_column` (0003), and rewritten on every
-- card change (updated_at): one index less to maintain per message.
DROP INDEX cards_board;

-- The dashboard reads indexes only: when the team first answered and when a
-- card left open work are kept on the card by the engine, so first-response
-- and resolution times need no walk through the messages.
ALTER TABLE cards ADD COLUMN first_reply_at BIGINT;
ALTER TABLE cards ADD COLUMN closed_at BIGINT;

-- Cards from before this migration: the first message a person of the team
-- wrote (rules' automatic replies do not count); a closed card's last change.
UPDATE cards SET first_reply_at = (
    SELECT MIN(m.at) FROM messages m
    WHERE m.card_id = cards.id AND m.direction = 'out'
      AND m.author IS NOT NULL AND m.author NOT LIKE 'rule %');
UPDATE cards SET closed_at = updated_at WHERE open = 0;

DROP INDEX cards_stats;
DROP INDEX cards_created;
-- Open work per team: counts read this index alone.
CREATE INDEX cards_open_work ON cards (pipe, open, team, sla_state, last_responder, assignee);
-- Cards opened per day, SLA compliance and first replies over a period.
CREATE INDEX cards_opened ON cards (pipe, created_at, sla_state, first_reply_at);
-- Cards resolved per day and resolution times.
CREATE INDEX cards_closed ON cards (pipe, closed_at, created_at);

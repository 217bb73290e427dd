-- Indexes for the pages agents and managers open all day (measured with
-- `cargo bench -p switchboard-server --bench pages` on 100,000 cards).

-- A board column in card order, with or without the unassigned filter.
CREATE INDEX cards_column ON cards (pipe, status, id);
-- The dashboard's counts read this index alone, never the cards' JSON.
CREATE INDEX cards_stats ON cards (pipe, open, sla_state, last_responder, assignee, created_at);
-- The dashboard's last 30 days: cards opened per day, first replies.
CREATE INDEX cards_created ON cards (pipe, created_at);

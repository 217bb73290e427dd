-- The server's backbone on PostgreSQL. Times are milliseconds since the Unix
-- epoch (UTC) in BIGINT columns, so both databases share one set of queries.

-- Every webhook body exactly as received, stored before Meta gets its 200.
CREATE TABLE wa_inbox (
    id            BIGSERIAL PRIMARY KEY,
    body_hash     TEXT    NOT NULL UNIQUE,     -- sha-256 of the raw body: identical retries are one row
    body          BYTEA   NOT NULL,
    received_at   BIGINT  NOT NULL,
    processed_at  BIGINT,                     -- NULL while waiting for the processor
    note          TEXT                         -- why the body was flagged (bad JSON, unknown number …)
);
CREATE INDEX wa_inbox_waiting ON wa_inbox (id) WHERE processed_at IS NULL;

-- Every input the engine saw, in order: replaying it rebuilds the engine's
-- state exactly (the engine is deterministic).
CREATE TABLE engine_events (
    seq    BIGSERIAL PRIMARY KEY,
    at     BIGINT  NOT NULL,
    event  TEXT    NOT NULL
);

-- The workflow texts each engine event ran against.
CREATE TABLE workflow_versions (
    id         BIGSERIAL PRIMARY KEY,
    hash       TEXT    NOT NULL,
    sources    TEXT    NOT NULL,              -- JSON: {path: text}
    loaded_at  BIGINT  NOT NULL
);

CREATE TABLE contacts (
    wa_id             TEXT PRIMARY KEY,
    user_id           TEXT,                   -- BSUID
    username          TEXT,
    name              TEXT NOT NULL DEFAULT '',
    phone             TEXT NOT NULL DEFAULT '',
    window_closes_at  BIGINT,
    updated_at        BIGINT  NOT NULL
);

-- Cards as the engine last left them; `view` is the card's JSON (api.md).
CREATE TABLE cards (
    id                BIGINT  PRIMARY KEY,    -- the engine's card id
    pipe              TEXT    NOT NULL,
    number            BIGINT  NOT NULL,
    contact           TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    open              BIGINT  NOT NULL,
    assignee          TEXT,
    team              TEXT,
    sla_state         TEXT    NOT NULL DEFAULT 'none',
    sla_due_at        BIGINT,
    last_responder    TEXT,
    template_needed   BIGINT  NOT NULL DEFAULT 0,
    preview           TEXT    NOT NULL DEFAULT '',
    view              TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    updated_at        BIGINT  NOT NULL,
    UNIQUE (pipe, number)
);
CREATE INDEX cards_board ON cards (pipe, status, updated_at);
CREATE INDEX cards_assignee ON cards (assignee, open);

CREATE TABLE messages (
    id             BIGSERIAL PRIMARY KEY,
    card_id        BIGINT  NOT NULL REFERENCES cards (id),
    key            TEXT    NOT NULL,          -- the engine's id: the wamid inbound, `out-…` outbound
    wamid          TEXT UNIQUE,
    direction      TEXT    NOT NULL,          -- in | out
    type           TEXT    NOT NULL,
    text           TEXT,
    author         TEXT,
    status         TEXT,
    status_rank    BIGINT  NOT NULL DEFAULT 0,
    status_reason  TEXT,
    at             BIGINT  NOT NULL,
    wa_timestamp   BIGINT,
    raw            TEXT,
    UNIQUE (card_id, key)
);
CREATE INDEX messages_card ON messages (card_id, at);

CREATE TABLE history (
    id       BIGSERIAL PRIMARY KEY,
    card_id  BIGINT  NOT NULL REFERENCES cards (id),
    at       BIGINT  NOT NULL,
    what     TEXT    NOT NULL,
    cause    TEXT    NOT NULL                 -- JSON
);
CREATE INDEX history_card ON history (card_id, id);

-- Delivery statuses as received, once each; also parks statuses whose
-- message we have not recorded yet.
CREATE TABLE wa_statuses (
    wamid        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    reason       TEXT,
    callback     TEXT,
    PRIMARY KEY (wamid, status)
);

-- Replies and notifications waiting to go out, written in the same
-- transaction as the card change that caused them.
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    card_id          BIGINT  NOT NULL,
    message_key      TEXT    NOT NULL,
    phone_number_id  TEXT    NOT NULL,
    recipient        TEXT    NOT NULL,
    request          TEXT    NOT NULL,        -- JSON SendRequest
    state            TEXT    NOT NULL,        -- queued | sending | retry | unknown | accepted | failed
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    claimed_until    BIGINT,
    wamid            TEXT,
    last_error_code  BIGINT,
    last_error       TEXT,
    uncertain        BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state IN ('queued', 'retry', 'unknown', 'sending');

-- Things an operator must see that belong to no card.
CREATE TABLE alerts (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT  NOT NULL,
    kind    TEXT    NOT NULL,
    detail  TEXT    NOT NULL
);

-- Who does the single-writer work (the engine) when several servers share
-- one database.
CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT    NOT NULL,
    until   BIGINT  NOT NULL
);

-- Full-text search over messages, contacts and fields.
CREATE TABLE search_index (
    card_id  BIGINT NOT NULL,
    pipe     TEXT   NOT NULL,
    body     TEXT   NOT NULL,
    tsv      tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED
);
CREATE INDEX search_index_tsv ON search_index USING GIN (tsv);

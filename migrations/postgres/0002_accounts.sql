-- People who log in, their sessions, and API tokens for scripts.

CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE,   -- lower case
    name           TEXT    NOT NULL,
    role           TEXT    NOT NULL,          -- admin | manager | agent
    password_hash  TEXT,                      -- argon2 (PHC string); NULL: cannot log in
    language       TEXT    NOT NULL DEFAULT 'en',
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

-- Only hashes of secrets are kept: a stolen database opens no session.
CREATE TABLE sessions (
    token_hash  TEXT    PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf        TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE api_tokens (
    token_hash  TEXT    PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    last_used_at BIGINT
);

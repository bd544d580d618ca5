-- Opaque access tokens, for servers whose token format is `opaque`. Only the SHA-256 of
-- the token is stored; the row carries what introspection reports.
CREATE TABLE access_tokens (
    token_hash  BYTEA   NOT NULL PRIMARY KEY,
    jti         TEXT    NOT NULL UNIQUE,
    client_id   TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    audience    TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    sid         TEXT,
    act         TEXT,
    issued_at   BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

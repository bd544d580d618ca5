-- Warden schema v1 (PostgreSQL).
-- Conventions shared with the SQLite schema: booleans are BIGINT 0/1, times are BIGINT
-- UNIX seconds (audit ts: milliseconds), lists and objects are JSON TEXT (not JSONB, which
-- would reorder keys under the audit hash), hashes and ciphertext are BYTEA.
-- client_id columns outside `client_secrets` carry no foreign key on purpose: clients
-- identified by a metadata-document URL are never stored in `clients`.

CREATE TABLE clients (
    client_id                  TEXT    NOT NULL PRIMARY KEY,
    name                       TEXT    NOT NULL,
    confidential               BIGINT  NOT NULL,
    redirect_uris              TEXT    NOT NULL,
    grant_types                TEXT    NOT NULL,
    scopes                     TEXT    NOT NULL,
    token_endpoint_auth_method TEXT    NOT NULL,
    metadata                   TEXT    NOT NULL,
    created_at                 BIGINT  NOT NULL,
    updated_at                 BIGINT  NOT NULL,
    last_used_at               BIGINT
);
CREATE INDEX clients_name_idx ON clients (name);

CREATE TABLE client_secrets (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    position   BIGINT  NOT NULL,
    hash       BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT
);
CREATE INDEX client_secrets_client_idx ON client_secrets (client_id);

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    groups_json   TEXT    NOT NULL,
    disabled      BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE TABLE servers (
    name                  TEXT    NOT NULL PRIMARY KEY,
    canonical_uri         TEXT    NOT NULL UNIQUE,
    upstream              TEXT    NOT NULL,
    tool_groups           TEXT    NOT NULL,
    token_format          TEXT    NOT NULL,
    access_token_ttl_secs BIGINT  NOT NULL,
    leeway_secs           BIGINT  NOT NULL,
    issuer                TEXT,
    settings              TEXT    NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);

CREATE TABLE auth_codes (
    code_hash      BYTEA   NOT NULL PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    resources      TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    nonce          TEXT,
    session_id     TEXT,
    family_id      TEXT    NOT NULL,
    auth_time      BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    used_at        BIGINT
);
CREATE INDEX auth_codes_expires_idx ON auth_codes (expires_at);

CREATE TABLE refresh_families (
    id                 TEXT    NOT NULL PRIMARY KEY,
    client_id          TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    scopes             TEXT    NOT NULL,
    resources          TEXT    NOT NULL,
    session_id         TEXT,
    current_hash       BYTEA   NOT NULL,
    generation         BIGINT  NOT NULL,
    token_expires_at   BIGINT  NOT NULL,
    session_expires_at BIGINT  NOT NULL,
    created_at         BIGINT  NOT NULL,
    rotated_at         BIGINT  NOT NULL,
    revoked_at         BIGINT ,
    revoked_reason     TEXT,
    grace              BYTEA,
    parent_family      TEXT
);
CREATE INDEX refresh_families_subject_idx ON refresh_families (subject);
CREATE INDEX refresh_families_session_idx ON refresh_families (session_id);
CREATE INDEX refresh_families_parent_idx ON refresh_families (parent_family);

-- Every refresh token hash ever issued, so a replay of any old token is recognised.
CREATE TABLE refresh_tokens (
    hash          BYTEA   NOT NULL PRIMARY KEY,
    family_id     TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    generation    BIGINT  NOT NULL,
    issued_at     BIGINT  NOT NULL,
    superseded_at BIGINT
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE revoked_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at BIGINT  NOT NULL,
    revoked_at BIGINT  NOT NULL
);
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

CREATE TABLE signing_keys (
    kid             TEXT    NOT NULL PRIMARY KEY,
    alg             TEXT    NOT NULL,
    public_jwk      TEXT    NOT NULL,
    private_key_enc BYTEA   NOT NULL,
    created_at      BIGINT  NOT NULL,
    publish_at      BIGINT  NOT NULL,
    activate_at     BIGINT  NOT NULL,
    retire_at       BIGINT ,
    remove_at       BIGINT
);

CREATE TABLE consents (
    user_id    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    granted_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);

CREATE TABLE audit_events (
    seq       BIGINT  NOT NULL PRIMARY KEY,
    ts        BIGINT  NOT NULL,
    kind      TEXT    NOT NULL,
    client_id TEXT,
    subject   TEXT,
    server    TEXT,
    detail    TEXT    NOT NULL,
    prev_hash BYTEA   NOT NULL,
    hash      BYTEA   NOT NULL
);
CREATE INDEX audit_events_ts_idx ON audit_events (ts);

-- One row: the chain head (last seq and hash) that every appender locks first, and the
-- anchor (seq and hash of the last pruned event) that verification starts from.
CREATE TABLE audit_head (
    id          BIGINT  NOT NULL PRIMARY KEY CHECK (id = 1),
    seq         BIGINT  NOT NULL,
    hash        BYTEA   NOT NULL,
    anchor_seq  BIGINT  NOT NULL,
    anchor_hash BYTEA   NOT NULL
);
INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash)
VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0, decode(repeat('00', 32), 'hex'));

-- Warden schema v1 (SQLite).
-- Conventions shared with the PostgreSQL schema: booleans are INTEGER 0/1, times are
-- INTEGER UNIX seconds (audit ts: milliseconds), lists and objects are JSON TEXT,
-- hashes and ciphertext are BLOB. Tables are STRICT so a wrong type fails loudly.
-- client_id columns outside `client_secrets` carry no foreign key on purpose: clients
-- identified by a metadata-document URL are never stored in `clients`.

CREATE TABLE clients (
    client_id                  TEXT    NOT NULL PRIMARY KEY,
    name                       TEXT    NOT NULL,
    confidential               INTEGER NOT NULL,
    redirect_uris              TEXT    NOT NULL,
    grant_types                TEXT    NOT NULL,
    scopes                     TEXT    NOT NULL,
    token_endpoint_auth_method TEXT    NOT NULL,
    metadata                   TEXT    NOT NULL,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL,
    last_used_at               INTEGER
) STRICT;
CREATE INDEX clients_name_idx ON clients (name);

CREATE TABLE client_secrets (
    id         TEXT    NOT NULL PRIMARY KEY,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
) STRICT;
CREATE INDEX client_secrets_client_idx ON client_secrets (client_id);

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    groups_json   TEXT    NOT NULL,
    disabled      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE servers (
    name                  TEXT    NOT NULL PRIMARY KEY,
    canonical_uri         TEXT    NOT NULL UNIQUE,
    upstream              TEXT    NOT NULL,
    tool_groups           TEXT    NOT NULL,
    token_format          TEXT    NOT NULL,
    access_token_ttl_secs INTEGER NOT NULL,
    leeway_secs           INTEGER NOT NULL,
    issuer                TEXT,
    settings              TEXT    NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;

CREATE TABLE auth_codes (
    code_hash      BLOB    NOT NULL PRIMARY KEY,
    client_id      TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    redirect_uri   TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    resources      TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    nonce          TEXT,
    session_id     TEXT,
    family_id      TEXT    NOT NULL,
    auth_time      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
) STRICT;
CREATE INDEX auth_codes_expires_idx ON auth_codes (expires_at);

CREATE TABLE refresh_families (
    id                 TEXT    NOT NULL PRIMARY KEY,
    client_id          TEXT    NOT NULL,
    subject            TEXT    NOT NULL,
    scopes             TEXT    NOT NULL,
    resources          TEXT    NOT NULL,
    session_id         TEXT,
    current_hash       BLOB    NOT NULL,
    generation         INTEGER NOT NULL,
    token_expires_at   INTEGER NOT NULL,
    session_expires_at INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    rotated_at         INTEGER NOT NULL,
    revoked_at         INTEGER,
    revoked_reason     TEXT,
    grace              BLOB,
    parent_family      TEXT
) STRICT;
CREATE INDEX refresh_families_subject_idx ON refresh_families (subject);
CREATE INDEX refresh_families_session_idx ON refresh_families (session_id);
CREATE INDEX refresh_families_parent_idx ON refresh_families (parent_family);

-- Every refresh token hash ever issued, so a replay of any old token is recognised.
CREATE TABLE refresh_tokens (
    hash          BLOB    NOT NULL PRIMARY KEY,
    family_id     TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    generation    INTEGER NOT NULL,
    issued_at     INTEGER NOT NULL,
    superseded_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

CREATE TABLE revoked_tokens (
    jti        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
) STRICT;
CREATE INDEX revoked_tokens_expires_idx ON revoked_tokens (expires_at);

CREATE TABLE signing_keys (
    kid             TEXT    NOT NULL PRIMARY KEY,
    alg             TEXT    NOT NULL,
    public_jwk      TEXT    NOT NULL,
    private_key_enc BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    publish_at      INTEGER NOT NULL,
    activate_at     INTEGER NOT NULL,
    retire_at       INTEGER,
    remove_at       INTEGER
) STRICT;

CREATE TABLE consents (
    user_id    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
) STRICT;

CREATE TABLE audit_events (
    seq       INTEGER NOT NULL PRIMARY KEY,
    ts        INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    client_id TEXT,
    subject   TEXT,
    server    TEXT,
    detail    TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL,
    hash      BLOB    NOT NULL
) STRICT;
CREATE INDEX audit_events_ts_idx ON audit_events (ts);

-- One row: the chain head (last seq and hash) that every appender locks first, and the
-- anchor (seq and hash of the last pruned event) that verification starts from.
CREATE TABLE audit_head (
    id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    hash        BLOB    NOT NULL,
    anchor_seq  INTEGER NOT NULL,
    anchor_hash BLOB    NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash, anchor_seq, anchor_hash)
VALUES (1, 0, zeroblob(32), 0, zeroblob(32));

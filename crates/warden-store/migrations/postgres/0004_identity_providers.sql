-- Identity providers (OIDC sign-in, ID-JAG, workload identity), the federated identities
-- linked to users, and the workload identities bound to clients.
-- A client secret arrives sealed with the master key (BLOB); the store never sees it in
-- clear. Email domains live in their own table so that one domain routes to one IdP.

CREATE TABLE idps (
    name                 TEXT    NOT NULL PRIMARY KEY,
    issuer               TEXT    NOT NULL,
    display_name         TEXT,
    uses                 TEXT    NOT NULL,
    client_id            TEXT,
    client_secret_sealed BYTEA,
    groups_claim         TEXT    NOT NULL,
    group_map            TEXT    NOT NULL,
    tenants              TEXT    NOT NULL,
    audiences            TEXT    NOT NULL,
    scopes               TEXT    NOT NULL,
    jwks_uri             TEXT,
    issuer_ca            TEXT,
    disabled             BIGINT  NOT NULL,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);

CREATE TABLE idp_domains (
    domain   TEXT    NOT NULL PRIMARY KEY,
    idp_name TEXT    NOT NULL REFERENCES idps (name) ON DELETE CASCADE,
    position BIGINT  NOT NULL
);
CREATE INDEX idp_domains_idp_idx ON idp_domains (idp_name);

-- No foreign key to `idps`: a user keeps its link (and account) when its IdP is removed,
-- so that adding the IdP back finds the same user.
CREATE TABLE user_identities (
    idp_name     TEXT    NOT NULL,
    issuer       TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);
CREATE INDEX user_identities_idp_idx ON user_identities (idp_name);

-- The IdP key has no ON DELETE action: an IdP with bound clients cannot be removed.
CREATE TABLE client_workloads (
    idp_name  TEXT NOT NULL REFERENCES idps (name),
    subject   TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    PRIMARY KEY (idp_name, subject)
);
CREATE INDEX client_workloads_client_idx ON client_workloads (client_id);

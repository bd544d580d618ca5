-- The DPoP key (RFC 7638 thumbprint) a refresh family's access tokens are bound to, and
-- the key an opaque access token is bound to (its cnf.jkt). NULL: bearer.

ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
ALTER TABLE access_tokens ADD COLUMN cnf_jkt TEXT;

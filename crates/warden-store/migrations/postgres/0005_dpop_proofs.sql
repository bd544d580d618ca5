-- DPoP proofs already accepted (RFC 9449 §11.1), shared by every replica: the key is the
-- SHA-256 of the proof key's thumbprint and the proof's jti, kept until the proof would
-- be refused as too old anyway. Claiming a key is one INSERT; a conflict is a replay.

CREATE TABLE dpop_proofs (
    proof_hash BYTEA  NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expiry_idx ON dpop_proofs (expires_at);

-- RFC 9449 §10: the DPoP key (RFC 7638 thumbprint) an authorization code is bound to,
-- from the authorization request's dpop_jkt. NULL: not bound.

ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT;

-- Console sessions: an operator signs in with an admin API key and gets a
-- random session cookie; only its SHA-256 is kept. A session names the key
-- it was opened with, so revoking the key ends the session, and it ends
-- after `idle_until` without use or at `expires_at` in any case.

CREATE TABLE console_sessions (
    token_hash  TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    idle_until  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

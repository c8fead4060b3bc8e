-- The recipient portal: one-time links and the sessions a correct one-time
-- code opens. Tokens, codes and session cookies are stored only as hashes
-- (links and sessions: SHA-256 of a 256-bit random token; codes: HMAC under
-- the tenant's pseudonym key, bound to the link). Times are Unix
-- milliseconds (columns ending in _ms).

CREATE TABLE portal_links (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    message_id      TEXT NOT NULL REFERENCES messages(id),
    recipient_id    TEXT NOT NULL REFERENCES recipients(id),
    token_hash      TEXT NOT NULL UNIQUE,
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    max_views       INTEGER NOT NULL,
    views           INTEGER NOT NULL DEFAULT 0,
    -- Wrong codes since the last lockout (or since the link was issued).
    attempts        INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER,
    -- The one code currently valid, if any.
    code_hash       TEXT,
    code_sent_ms    INTEGER,
    code_expires_ms INTEGER,
    codes_sent      INTEGER NOT NULL DEFAULT 0,
    last_viewed_ms  INTEGER
);
CREATE INDEX portal_links_message ON portal_links (tenant_id, message_id);
CREATE INDEX portal_links_recipient ON portal_links (tenant_id, recipient_id);

CREATE TABLE portal_sessions (
    token_hash   TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    link_id      TEXT NOT NULL REFERENCES portal_links(id),
    created_ms   INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL,
    ended_ms     INTEGER
);
CREATE INDEX portal_sessions_link ON portal_sessions (link_id);

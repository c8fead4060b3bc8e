-- ladder service schema (PostgreSQL). Timestamps are Unix seconds unless the
-- column name ends in _ms. No column ever holds message content in
-- plaintext: payloads and recipient addresses are sealed.

CREATE TABLE tenants (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    active_policy TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    token_hash TEXT NOT NULL UNIQUE,
    scope      TEXT NOT NULL CHECK (scope IN ('sender', 'admin')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE policies (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    version      TEXT NOT NULL,
    revision     BIGINT NOT NULL,
    source       TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE recipients (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    external_id    TEXT NOT NULL,
    pseudonym      TEXT NOT NULL,
    contact_sealed BYTEA NOT NULL,
    has_email      BIGINT NOT NULL,
    has_phone      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (tenant_id, external_id)
);

CREATE TABLE devices (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    recipient_id  TEXT NOT NULL REFERENCES recipients(id),
    identity_key  BYTEA NOT NULL,
    agreement_key BYTEA,
    evidence      TEXT NOT NULL,
    enrolled_at   BIGINT NOT NULL,
    revoked_at    BIGINT
);
CREATE INDEX devices_recipient ON devices (tenant_id, recipient_id);

CREATE TABLE challenges (
    nonce      TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    device_id  TEXT NOT NULL REFERENCES devices(id),
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Every override ever set is kept (history for the audit trail): `id` is
-- the row, `rule_id` the operator's name for it, unique among live ones.
CREATE TABLE overrides (
    id             TEXT PRIMARY KEY,
    rule_id        TEXT NOT NULL,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    rule           TEXT NOT NULL,
    reason         TEXT NOT NULL,
    author         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    cleared_at     BIGINT,
    cleared_by     TEXT,
    expiry_audited BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX overrides_tenant ON overrides (tenant_id, rule_id, created_at);

CREATE TABLE threads (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    recipient_id TEXT NOT NULL REFERENCES recipients(id),
    name         TEXT NOT NULL,
    floor        TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, recipient_id, name)
);

CREATE TABLE messages (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    idempotency_key   TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    recipient_id      TEXT NOT NULL REFERENCES recipients(id),
    thread_id         TEXT NOT NULL REFERENCES threads(id),
    class             TEXT NOT NULL,
    status            TEXT NOT NULL,
    decision          TEXT NOT NULL,
    failed            TEXT NOT NULL,
    response_status   BIGINT NOT NULL,
    response_body     TEXT NOT NULL,
    confirmation_hash TEXT,
    accepted_at       BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX messages_expiry ON messages (expires_at);

CREATE TABLE payloads (
    message_id   TEXT PRIMARY KEY REFERENCES messages(id),
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    kek_id       TEXT,
    wrapped_key  BYTEA,
    ciphertext   BYTEA,
    shredded_at  BIGINT,
    shred_reason TEXT
);

CREATE TABLE outbox (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    message_id  TEXT NOT NULL REFERENCES messages(id),
    kind        TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at_ms  BIGINT NOT NULL,
    lease_until BIGINT,
    lease_owner TEXT,
    done_at     BIGINT,
    last_error  TEXT
);
CREATE INDEX outbox_due ON outbox (done_at, next_at_ms);

CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    message_id TEXT NOT NULL REFERENCES messages(id),
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX events_message ON events (message_id, id);

CREATE TABLE sandbox_inbox (
    idempotency_key TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    message_id      TEXT NOT NULL REFERENCES messages(id),
    recipient_id    TEXT NOT NULL REFERENCES recipients(id),
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    notice_text     TEXT,
    at_ms           BIGINT NOT NULL
);
CREATE INDEX sandbox_inbox_tenant ON sandbox_inbox (tenant_id, at_ms);

-- Channels: where a device receives wake-ups, and what each provider
-- accepted (its reference, for receipts arriving by webhook).
ALTER TABLE devices ADD COLUMN push_platform TEXT;
ALTER TABLE devices ADD COLUMN push_token TEXT;

CREATE TABLE deliveries (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    message_id      TEXT NOT NULL REFERENCES messages(id),
    channel         TEXT NOT NULL,
    provider_ref    TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, channel, provider_ref)
);
CREATE INDEX deliveries_message ON deliveries (tenant_id, message_id);

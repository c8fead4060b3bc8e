-- Outbound event webhooks: a tenant's subscriptions (its own endpoints),
-- the events owed to each (an outbox written in the transaction of the
-- fact they report) and every attempt to deliver one.
--
-- A subscription's signing secret is not stored: it is derived from the
-- keyring over a random salt kept here, so the database alone cannot sign.
-- During a rotation's grace period the previous salt is kept too.

CREATE TABLE event_subscriptions (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    url             TEXT NOT NULL,
    event_types     TEXT NOT NULL,
    enabled         BIGINT NOT NULL,
    secret_salt     TEXT NOT NULL,
    previous_salt   TEXT,
    previous_until  BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);
CREATE INDEX event_subscriptions_tenant ON event_subscriptions (tenant_id, id);

CREATE TABLE event_deliveries (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    subscription_id TEXT NOT NULL REFERENCES event_subscriptions(id),
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_at_ms      BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    done_at         BIGINT
);
CREATE INDEX event_deliveries_due ON event_deliveries (state, next_at_ms);
CREATE INDEX event_deliveries_subscription ON event_deliveries (tenant_id, subscription_id, id);

CREATE TABLE event_attempts (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    subscription_id TEXT NOT NULL REFERENCES event_subscriptions(id),
    event_id        TEXT NOT NULL REFERENCES event_deliveries(id),
    attempt         BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    status_code     BIGINT,
    error_kind      TEXT,
    duration_ms     BIGINT NOT NULL
);
CREATE INDEX event_attempts_subscription ON event_attempts (tenant_id, subscription_id, id);

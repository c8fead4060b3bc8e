-- Hand-overs fixed before the provider call, so a retry after a crash
-- repeats exactly what was (or may have been) sent, never something new.
--
-- `handovers`: one row per provider idempotency key (message, step,
-- channel), written before the first call and never changed; its
-- `started_ms` dates everything the hand-over shows (the e-mail `Date`
-- header, a notice's "valid for"), so a resend is byte-identical.
--
-- `portal_links.step`: a portal link is issued once per (message, step) and
-- reused on retry (links issued before this migration have none).

CREATE TABLE handovers (
    tenant_id       TEXT NOT NULL REFERENCES tenants(id),
    idempotency_key TEXT NOT NULL,
    message_id      TEXT NOT NULL REFERENCES messages(id),
    channel         TEXT NOT NULL,
    started_ms      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX handovers_message ON handovers (tenant_id, message_id);

ALTER TABLE portal_links ADD COLUMN step TEXT;
CREATE UNIQUE INDEX portal_links_step ON portal_links (tenant_id, message_id, step);

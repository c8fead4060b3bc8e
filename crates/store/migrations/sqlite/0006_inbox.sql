-- In-app inbox: one HPKE ciphertext of a message per device it was sealed
-- to. Only ciphertext is stored (`enc` is the HPKE encapsulated key); the
-- thread, message, assurance and expiry beside it are bound into the
-- ciphertext's associated data, so a row moved to another message or
-- thread, or relabelled, no longer opens. A row is removed once its device
-- acknowledges it; `fetched_at` is the first time the device fetched it.
CREATE TABLE inbox (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    device_id  TEXT NOT NULL REFERENCES devices(id),
    message_id TEXT NOT NULL REFERENCES messages(id),
    thread_id  TEXT NOT NULL REFERENCES threads(id),
    assurance  TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    enc        BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    fetched_at INTEGER,
    PRIMARY KEY (device_id, message_id)
);
CREATE INDEX inbox_message ON inbox (tenant_id, message_id);
CREATE INDEX inbox_expiry ON inbox (expires_at);

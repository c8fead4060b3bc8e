-- ladder audit chain (SQLite): a per-tenant, append-only, hash-chained log
-- with signed checkpoints. See crates/store/src/audit/ for the encoding.
--
-- audit_entries holds one row per event: `hash` is SHA-256 over the entry's
-- canonical encoding, which includes `prev_hash`, the hash of the entry
-- before it (64 zeros for seq 1). `details` is canonical JSON text and never
-- holds message content or a raw recipient address.
--
-- audit_heads holds each tenant's last seq and hash; appends lock it so that
-- the chain stays linear. audit_checkpoints holds signed statements of a
-- head. Entries and checkpoints are append-only: the triggers below refuse
-- UPDATE and DELETE (defence in depth; the chain is what detects tampering
-- by someone who can drop a trigger).

CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    seq       INTEGER NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TABLE audit_entries (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    subject   TEXT,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE audit_checkpoints (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    seq        INTEGER NOT NULL,
    head_hash  TEXT NOT NULL,
    at         INTEGER NOT NULL,
    key_id     TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only: DELETE refused');
END;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused');
END;

-- ladder audit chain (PostgreSQL): a per-tenant, append-only, hash-chained
-- log with signed checkpoints. See crates/store/src/audit/ for the encoding.
--
-- audit_entries holds one row per event: `hash` is SHA-256 over the entry's
-- canonical encoding, which includes `prev_hash`, the hash of the entry
-- before it (64 zeros for seq 1). `details` is canonical JSON text and never
-- holds message content or a raw recipient address.
--
-- audit_heads holds each tenant's last seq and hash; appends take its row
-- lock (SELECT ... FOR UPDATE), so nodes sharing this database serialise per
-- tenant and the chain stays linear. audit_checkpoints holds signed
-- statements of a head. Entries and checkpoints are append-only: the
-- triggers below refuse UPDATE, DELETE and TRUNCATE (defence in depth; the
-- chain is what detects tampering by someone who can drop a trigger).

CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TABLE audit_entries (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    seq       BIGINT NOT NULL,
    at        BIGINT NOT NULL,
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
    seq        BIGINT NOT NULL,
    head_hash  TEXT NOT NULL,
    at         BIGINT NOT NULL,
    key_id     TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;

CREATE TRIGGER audit_entries_append_only
    BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_entries_no_truncate
    BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

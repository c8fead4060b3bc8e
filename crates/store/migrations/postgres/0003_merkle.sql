-- the Merkle tree over the audit log (PostgreSQL): see
-- crates/store/src/audit/merkle.rs.
--
-- Each tenant's audit entries are the leaves of an RFC 9162 (RFC 6962)
-- Merkle tree: leaf i is SHA-256(0x00 || canonical bytes of entry seq i+1).
--
-- merkle_hashes holds the tree's stored hashes: every leaf hash and the hash
-- of every complete (power-of-two) subtree, numbered densely in the order of
-- Go's sumdb/tlog (`stored_hash_index(level, n)`), about two per entry.
-- They answer inclusion and consistency proofs and any earlier root without
-- rereading the entries. Rows are written once and never changed: the
-- triggers below refuse UPDATE, DELETE and TRUNCATE (defence in depth; the
-- signed roots are what detect tampering). audit_append_only() comes from
-- 0002_audit.sql.
--
-- merkle_heads holds, per tenant, how many entries are in the tree (`size`)
-- and its root. Integration takes this row's lock (SELECT ... FOR UPDATE),
-- so nodes sharing the database extend a tenant's tree one at a time.

CREATE TABLE merkle_hashes (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    idx       BIGINT NOT NULL,
    hash      BYTEA NOT NULL,
    PRIMARY KEY (tenant_id, idx)
);

CREATE TABLE merkle_heads (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    size      BIGINT NOT NULL,
    root      BYTEA NOT NULL
);

CREATE TRIGGER merkle_hashes_append_only
    BEFORE UPDATE OR DELETE ON merkle_hashes
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER merkle_hashes_no_truncate
    BEFORE TRUNCATE ON merkle_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

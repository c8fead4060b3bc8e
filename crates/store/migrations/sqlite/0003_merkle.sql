-- the Merkle tree over the audit log (SQLite): see
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
-- triggers below refuse UPDATE and DELETE (defence in depth; the signed
-- roots are what detect tampering).
--
-- merkle_heads holds, per tenant, how many entries are in the tree (`size`)
-- and its root. Integration locks this row, so only one writer extends a
-- tenant's tree at a time.

CREATE TABLE merkle_hashes (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    idx       INTEGER NOT NULL,
    hash      BLOB NOT NULL,
    PRIMARY KEY (tenant_id, idx)
) WITHOUT ROWID;

CREATE TABLE merkle_heads (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    size      INTEGER NOT NULL,
    root      BLOB NOT NULL
);

CREATE TRIGGER merkle_hashes_no_update BEFORE UPDATE ON merkle_hashes
BEGIN
    SELECT RAISE(ABORT, 'merkle_hashes is append-only: UPDATE refused');
END;

CREATE TRIGGER merkle_hashes_no_delete BEFORE DELETE ON merkle_hashes
BEGIN
    SELECT RAISE(ABORT, 'merkle_hashes is append-only: DELETE refused');
END;

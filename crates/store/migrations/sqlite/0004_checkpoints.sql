-- Signed checkpoints of each tenant's Merkle log: the C2SP signed note as
-- served, with its size and root for lookups. Append-only by convention;
-- what makes a rewrite evident is the signature and witnesses' copies.
CREATE TABLE merkle_checkpoints (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    size      INTEGER NOT NULL,
    root      BLOB NOT NULL,
    note      TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, size)
);

-- What the operator's lists (issue 10) page and filter by, so no list
-- parses a JSON column or scans a tenant's whole table.
--
-- A thread's floor and label, kept as columns beside the floor they come
-- from (written with it on every insert and update); rows from before this
-- migration are filled from their floors.

ALTER TABLE threads ADD COLUMN floor_level TEXT;
ALTER TABLE threads ADD COLUMN label_level TEXT;

UPDATE threads SET
    floor_level = json_extract(floor, '$.floor'),
    label_level = json_extract(floor, '$.label');

-- Threads, newest first by id; escalated and held messages by status.
CREATE INDEX threads_tenant_id ON threads (tenant_id, id);
CREATE INDEX messages_tenant_status ON messages (tenant_id, status, id);

-- Audit entries by what they are about (a thread's last drop, a message's
-- history) and by kind.
CREATE INDEX audit_entries_subject ON audit_entries (tenant_id, subject, seq);
CREATE INDEX audit_entries_kind ON audit_entries (tenant_id, kind, seq);

-- Override history and policy versions, newest first.
CREATE INDEX overrides_tenant_created ON overrides (tenant_id, created_at, id);
CREATE INDEX policies_tenant_published ON policies (tenant_id, published_at, version);

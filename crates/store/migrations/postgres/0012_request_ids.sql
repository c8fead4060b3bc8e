-- The id of the HTTP request that caused a piece of delivery work (see
-- `ids::RequestId`), so the worker's log lines for that work carry it and
-- one grep finds a request and every delivery attempt it caused. Work
-- queued before this migration, or by no request (a maintenance sweep),
-- has none.

ALTER TABLE outbox ADD COLUMN request_id TEXT;

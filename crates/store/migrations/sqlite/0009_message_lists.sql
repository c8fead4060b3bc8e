-- What lists filter messages by, kept as columns beside the decision they
-- come from (written with it on every insert and update), so a support
-- agent's search never parses every decision: its outcome code, its route
-- name (`portal+email_notice`, NULL without a route) and the class's mode.
-- Rows from before this migration are filled from their decisions.

ALTER TABLE messages ADD COLUMN outcome TEXT;
ALTER TABLE messages ADD COLUMN route TEXT;
ALTER TABLE messages ADD COLUMN mode TEXT;

UPDATE messages SET
    outcome = json_extract(decision, '$.outcome.outcome'),
    mode = json_extract(decision, '$.mode'),
    route = CASE
        WHEN json_extract(decision, '$.outcome.route.container') IS NULL THEN NULL
        WHEN json_extract(decision, '$.outcome.route.notifier') IS NULL
            THEN json_extract(decision, '$.outcome.route.container')
        ELSE json_extract(decision, '$.outcome.route.container') || '+'
            || json_extract(decision, '$.outcome.route.notifier')
    END;

-- Lists page a tenant's messages and recipients newest first by id.
CREATE INDEX messages_tenant_id ON messages (tenant_id, id);
CREATE INDEX recipients_tenant_id ON recipients (tenant_id, id);

-- A portal link keeps the second factor of the route that sent it (see
-- `portal::Link::second_factor`); links issued before have none.
ALTER TABLE portal_links ADD COLUMN second_factor TEXT;

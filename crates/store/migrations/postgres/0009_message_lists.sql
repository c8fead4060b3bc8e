-- What lists filter messages by, kept as columns beside the decision they
-- come from (written with it on every insert and update), so a support
-- agent's search never parses every decision: its outcome code, its route
-- name (`portal+email_notice`, NULL without a route) and the class's mode.
-- Rows from before this migration are filled from their decisions.

ALTER TABLE messages ADD COLUMN outcome TEXT;
ALTER TABLE messages ADD COLUMN route TEXT;
ALTER TABLE messages ADD COLUMN mode TEXT;

UPDATE messages SET
    outcome = decision::jsonb -> 'outcome' ->> 'outcome',
    mode = decision::jsonb ->> 'mode',
    route = CASE
        WHEN decision::jsonb -> 'outcome' -> 'route' ->> 'container' IS NULL THEN NULL
        WHEN decision::jsonb -> 'outcome' -> 'route' ->> 'notifier' IS NULL
            THEN decision::jsonb -> 'outcome' -> 'route' ->> 'container'
        ELSE (decision::jsonb -> 'outcome' -> 'route' ->> 'container') || '+'
            || (decision::jsonb -> 'outcome' -> 'route' ->> 'notifier')
    END;

-- Lists page a tenant's messages and recipients newest first by id.
CREATE INDEX messages_tenant_id ON messages (tenant_id, id);
CREATE INDEX recipients_tenant_id ON recipients (tenant_id, id);

-- A portal link keeps the second factor of the route that sent it (see
-- `portal::Link::second_factor`); links issued before have none.
ALTER TABLE portal_links ADD COLUMN second_factor TEXT;

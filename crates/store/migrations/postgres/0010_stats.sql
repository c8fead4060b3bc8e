-- Dashboard aggregates (`stats.rs`): one counter per tenant, granularity
-- (`minute`, `hour`, `day`), bucket start (unix seconds), metric and its
-- dimensions. The service adds to the minute, hour and day rows of an event
-- in the transaction that records the event, so the figures equal the
-- facts and a dashboard never scans messages. Dimensions a metric does not
-- have are '' (never NULL: they are part of the key). No ids, addresses or
-- content: classes, route names, outcome codes, channels and causes only.

CREATE TABLE stats_counters (
    tenant_id TEXT NOT NULL,
    granularity TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    metric TEXT NOT NULL,
    class TEXT NOT NULL,
    d1 TEXT NOT NULL,
    d2 TEXT NOT NULL,
    d3 TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, granularity, bucket_start, metric, class, d1, d2, d3)
);

-- The message searches a support agent runs most, measured at 1 M
-- messages (`benches/console.rs`): one person's messages (by recipient,
-- newest first) and a class in a status (`messages::list`).
CREATE INDEX messages_recipient ON messages (tenant_id, recipient_id, id);
CREATE INDEX messages_class_status ON messages (tenant_id, class, status, id);

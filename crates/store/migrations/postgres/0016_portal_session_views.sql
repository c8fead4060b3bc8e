-- When a portal session last counted a view of its message. A download is
-- part of a view: it is served only to a session that counted one, shortly
-- before — never to a session that skipped the message page, nor after the
-- views of the link ran out for someone who never saw it.

ALTER TABLE portal_sessions ADD COLUMN viewed_ms BIGINT;

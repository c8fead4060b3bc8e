-- How the portal speaks to a recipient: their language (a BCP 47 tag the
-- portal has messages for, e.g. `de` or `fr-CA`) and their time zone (an
-- IANA name, e.g. `Europe/Berlin`). Both optional: without a language the
-- portal follows the browser's `Accept-Language`, without a zone it shows
-- UTC.

ALTER TABLE recipients ADD COLUMN language TEXT;
ALTER TABLE recipients ADD COLUMN time_zone TEXT;

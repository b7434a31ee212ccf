-- boda ledger schema 4 (PostgreSQL): what each build got and is, recorded when it is built.
--   tag         the commit tag the build got: the template's, or a longer one when another commit
--               of the app already held it (a collision of the short form)
--   media_type  the media type of the build's manifest (an index has children to plan with it)
--   size        the size of that manifest in bytes
-- Builds recorded before this schema have none of them (NULL): readers fall back to the commit
-- tag the configured template gives, and read the manifest to learn what it is.

ALTER TABLE builds ADD COLUMN tag TEXT COLLATE "C";
ALTER TABLE builds ADD COLUMN media_type TEXT;
ALTER TABLE builds ADD COLUMN size BIGINT CHECK (size IS NULL OR size >= 0);

-- A commit tag names one commit's build of an app, for ever.
CREATE UNIQUE INDEX builds_app_tag ON builds (app, tag);

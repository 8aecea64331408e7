-- 0014_version_warnings: what a publish warned about (a JSON array of
-- strings, '' for none), shown in the version record.
ALTER TABLE versions ADD COLUMN warnings TEXT NOT NULL DEFAULT '';

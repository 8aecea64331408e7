-- 0005_event_chain: the audit log as a hash chain (meta.EventHash).
--
-- Plain SQL for every backend (see 0001_init). hash is the lowercase hex
-- sha256 of the event's canonical encoding, which includes prev_hash, the
-- hash of the event before it by id. Rows appended before this migration
-- keep '' in both: the chain starts at the first event with a hash (see
-- docs/design.md, "Audit log").

ALTER TABLE events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';

ALTER TABLE events ADD COLUMN hash TEXT NOT NULL DEFAULT '';

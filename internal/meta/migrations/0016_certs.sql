-- 0016_certs: a domain's HTTPS settings: https_redirect sends its plain
-- HTTP requests to HTTPS (308); hsts adds Strict-Transport-Security to its
-- HTTPS responses. Both off by default.
ALTER TABLE domains ADD COLUMN https_redirect BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE domains ADD COLUMN hsts BOOLEAN NOT NULL DEFAULT FALSE;
-- Also: the edge's ACME state (certificates, keys, account), as
-- certmagic's Storage sees it: a flat key space of '/'-separated names.
-- value is base64 text, so that one column type serves both dialects.
-- cert_locks are certmagic's named locks across processes: a row is held
-- by owner until expires (unix nanoseconds) and renewed while held.
CREATE TABLE certs (
    key      TEXT PRIMARY KEY,
    value    TEXT NOT NULL,
    size     BIGINT NOT NULL, -- of the decoded value
    modified BIGINT NOT NULL
);
CREATE TABLE cert_locks (
    name    TEXT PRIMARY KEY,
    owner   TEXT NOT NULL,
    expires BIGINT NOT NULL
);

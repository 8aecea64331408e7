-- 0007_tokens: scoped access tokens (meta.Tokens).
--
-- Plain SQL for every backend (see 0001_init). A token's secret is never
-- stored: hash is the hex sha256 of it, unique, and the lookup key of
-- every authenticated request. scopes is the list of scopes joined by
-- single spaces (a scope has none). Times are BIGINT unix nanoseconds UTC;
-- expires_at, last_used_at and revoked_at are NULL until set.

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

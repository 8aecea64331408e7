-- 0027_proxy_rewrites: whether the edge proxies a static deployment's
-- _redirects rules that rewrite (200) to an external http(s) URL. Off by
-- default: publishing such a rule is refused, and the edge never proxies
-- for a deployment that does not allow it (docs/design.md, "Site rules").
ALTER TABLE deployments ADD COLUMN proxy_rewrites BOOLEAN NOT NULL DEFAULT FALSE;

-- 0011_site_settings: how the edge serves a static deployment. spa: unknown
-- paths of requests that accept HTML get the entrypoint (200); clean_urls:
-- /about serves about.html and /about.html redirects (308) to /about. Both
-- are off by default, so that an existing site keeps its URLs.
ALTER TABLE deployments ADD COLUMN spa BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE deployments ADD COLUMN clean_urls BOOLEAN NOT NULL DEFAULT FALSE;

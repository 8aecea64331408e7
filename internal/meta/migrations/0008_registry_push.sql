-- 0008_registry_push: a registry push never activates by itself; an oci
-- deployment may name the one tag whose push activates
-- (activate_on_push, '' for none). A version's tags are not stored: they
-- are the oci_tags of the deployment's repository that point at the
-- version's manifest.

ALTER TABLE deployments ADD COLUMN activate_on_push TEXT NOT NULL DEFAULT '';

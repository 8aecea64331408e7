-- 0012_version_runtime: a dynamic (rootfs) version carries its runtime
-- settings (cmd, env, workdir, user, port, health_check) as a JSON object;
-- NULL for static and oci versions.
ALTER TABLE versions ADD COLUMN runtime TEXT;

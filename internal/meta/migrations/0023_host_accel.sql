-- 0023_host_accel: what a microVM host boots its guests with
-- (docs/design.md, "MicroVMs"): the acceleration ("kvm" or "tcg") and the
-- sha256 of the guest kernel. Both are empty for container hosts.
ALTER TABLE hosts ADD COLUMN accel TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN kernel_sha256 TEXT NOT NULL DEFAULT '';

-- 0010_deployment_delete: a deleted deployment keeps its row (for audit)
-- with deleted_at set; every version is archived and no domain points at it.
ALTER TABLE deployments ADD COLUMN deleted_at BIGINT;

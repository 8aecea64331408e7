-- 0013_derived: derived artifacts (meta.Derivations). A row says that
-- release sha256 was derived, as kind, from source_sha256: a rootfs
-- flattened from an OCI image (source: its manifest digest, hex), or an
-- erofs image built from a rootfs release (source: that release). One
-- derivation per (kind, source); the GC keeps sha256 while its source is
-- rooted by a version (see meta.GCSnapshot.Roots).
CREATE TABLE derived (
    kind          TEXT NOT NULL CHECK (kind IN ('rootfs', 'erofs')),
    source_sha256 TEXT NOT NULL,
    sha256        TEXT NOT NULL REFERENCES releases (sha256),
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (kind, source_sha256)
);

CREATE INDEX derived_sha256 ON derived (sha256);

-- 0017_contents: the content index (meta.ContentIndex). A row says that
-- release release_sha256 holds a file whose content has sha256 sha256, of
-- size bytes, in the compressed bytes [frame_offset, frame_offset +
-- frame_length) of its data frames; shared: those bytes are one shared
-- frame and the content starts at in_frame of its decompressed input.
-- Filled when a static release is stored by a publish, so that an
-- incremental publish knows which contents the server already holds.
--
-- The GC keeps it true: collecting a release deletes its rows in the same
-- transaction, and a lookup ignores releases being collected or collected.
CREATE TABLE contents (
    sha256         TEXT NOT NULL,
    release_sha256 TEXT NOT NULL REFERENCES releases (sha256),
    size           BIGINT NOT NULL,
    frame_offset   BIGINT NOT NULL,
    frame_length   BIGINT NOT NULL,
    in_frame       BIGINT NOT NULL,
    shared         BOOLEAN NOT NULL,
    PRIMARY KEY (sha256, release_sha256)
);

CREATE INDEX contents_release ON contents (release_sha256);

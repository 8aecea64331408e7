package meta

import "context"

// Content locates a file's content inside a stored release (see
// docs/format.md): the compressed bytes [FrameOffset, FrameOffset +
// FrameLength) of its data frames decompress to the content (own frames),
// or to a shared frame whose input holds it at InFrame (Shared).
type Content struct {
	SHA256        string `json:"sha256"`
	ReleaseSHA256 string `json:"release_sha256"`
	Size          int64  `json:"size"`
	FrameOffset   int64  `json:"frame_offset"`
	FrameLength   int64  `json:"frame_length"`
	InFrame       int64  `json:"in_frame,omitempty"`
	Shared        bool   `json:"shared,omitempty"`
}

// ContentIndex is implemented by stores that index the contents of stored
// releases (migration 0017), for incremental publishes; callers
// type-assert.
type ContentIndex interface {
	// IndexContents records cs, every one with ReleaseSHA256 rel, whose
	// release row must exist (ErrNotFound otherwise). Recording a content
	// again changes nothing. Malformed sha256s, negative sizes or
	// offsets: ErrInvalid.
	IndexContents(ctx context.Context, rel string, cs []Content) error
	// FindContents returns, for each of shas that some release neither
	// collected nor being collected holds, one place that holds it (the
	// smallest release sha256, so answers are stable). Unknown shas are
	// absent from the map.
	FindContents(ctx context.Context, shas []string) (map[string]Content, error)
}

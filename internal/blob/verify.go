package blob

import (
	_ "crypto/sha256" // registers SHA-256 for go-digest
	_ "crypto/sha512" // registers SHA-512 for go-digest
	"fmt"
	"hash"

	"github.com/opencontainers/go-digest"
)

// ValidateDigest returns nil if d is well formed and uses a supported algorithm
// (sha256 or sha512, lower-case hex). Otherwise the error wraps ErrInvalidDigest.
// Backends call it before a digest becomes a path or an object key.
func ValidateDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidDigest, clip(d), err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return fmt.Errorf("%w: %q: unsupported algorithm", ErrInvalidDigest, clip(d))
}

// ParseDigest parses and validates "alg:hex" (e.g. "sha256:…").
// The error wraps ErrInvalidDigest.
func ParseDigest(s string) (digest.Digest, error) {
	d := digest.Digest(s)
	if err := ValidateDigest(d); err != nil {
		return "", err
	}
	return d, nil
}

// Verifier is an io.Writer that hashes and counts what is written to it, so a
// backend can check a stream against the digest and size it was promised.
// Every backend's Put goes through one.
type Verifier struct {
	want digest.Digest
	size int64 // expected size; < 0 means unknown
	h    hash.Hash
	n    int64
}

// NewVerifier returns a Verifier for d. size < 0 means the size is unknown.
// An invalid digest returns an error wrapping ErrInvalidDigest.
func NewVerifier(d digest.Digest, size int64) (*Verifier, error) {
	if err := ValidateDigest(d); err != nil {
		return nil, err
	}
	return &Verifier{want: d, size: size, h: d.Algorithm().Hash()}, nil
}

// Write hashes p. Once more bytes than the expected size have been offered it
// returns an error wrapping ErrDigestMismatch, so a caller copying into storage
// stops early instead of storing an oversized stream.
func (v *Verifier) Write(p []byte) (int, error) {
	v.n += int64(len(p))
	if v.size >= 0 && v.n > v.size {
		return 0, v.sizeErr()
	}
	v.h.Write(p) // hash.Hash.Write never fails
	return len(p), nil
}

// Written returns the number of bytes offered to Write so far.
func (v *Verifier) Written() int64 { return v.n }

// Check returns nil if the bytes written hash to the expected digest and, when
// the size is known, number exactly that size. Otherwise it returns an error
// wrapping ErrDigestMismatch.
func (v *Verifier) Check() error {
	if v.size >= 0 && v.n != v.size {
		return v.sizeErr()
	}
	if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
		return fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, v.want)
	}
	return nil
}

func (v *Verifier) sizeErr() error {
	return fmt.Errorf("%w: %s: got %d bytes, want %d", ErrDigestMismatch, v.want, v.n, v.size)
}

// clip keeps a caller-supplied digest short enough to quote in an error.
func clip(d digest.Digest) string {
	const limit = 80
	if len(d) > limit {
		return string(d[:limit]) + "…"
	}
	return string(d)
}

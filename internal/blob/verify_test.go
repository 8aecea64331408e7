package blob_test

import (
	"errors"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

func TestVerifier(t *testing.T) {
	b := []byte("content")
	for _, d := range []digest.Digest{digest.SHA256.FromBytes(b), digest.SHA512.FromBytes(b)} {
		for _, c := range []struct {
			size  int64
			write []byte
			want  error
		}{
			{int64(len(b)), b, nil},
			{-1, b, nil},
			{int64(len(b)) + 1, b, blob.ErrDigestMismatch},
			{int64(len(b)) - 1, b, blob.ErrDigestMismatch},
			{-1, []byte("other!!"), blob.ErrDigestMismatch},
			{-1, nil, blob.ErrDigestMismatch},
		} {
			v, err := blob.NewVerifier(d, c.size)
			if err != nil {
				t.Fatal(err)
			}
			v.Write(c.write)
			if err := v.Check(); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("%s size %d, wrote %q: Check = %v, want %v", d.Algorithm(), c.size, c.write, err, c.want)
			}
		}
	}
}

func TestVerifierStopsOversizedWrite(t *testing.T) {
	v, _ := blob.NewVerifier(digest.FromString("ab"), 2)
	if _, err := v.Write([]byte("abc")); !errors.Is(err, blob.ErrDigestMismatch) {
		t.Errorf("Write past size: %v, want ErrDigestMismatch", err)
	}
}

func TestParseDigest(t *testing.T) {
	good := digest.FromString("x")
	if d, err := blob.ParseDigest(string(good)); err != nil || d != good {
		t.Errorf("ParseDigest(%s) = %s, %v", good, d, err)
	}
	for _, bad := range []string{"", "sha256", "sha256:", "sha256:zz", "x:" + good.Encoded(),
		string(digest.SHA384.FromString("x")), "sha256:../../etc/passwd"} {
		if _, err := blob.ParseDigest(bad); !errors.Is(err, blob.ErrInvalidDigest) {
			t.Errorf("ParseDigest(%q): %v, want ErrInvalidDigest", bad, err)
		}
		if _, err := blob.NewVerifier(digest.Digest(bad), -1); !errors.Is(err, blob.ErrInvalidDigest) {
			t.Errorf("NewVerifier(%q): %v, want ErrInvalidDigest", bad, err)
		}
	}
}

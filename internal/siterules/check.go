package siterules

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckDir checks the _redirects and _headers at the root of a site's
// tree, if any, as Check does with o. Either must be a regular file of at most
// MaxFileBytes. Errors about their content wrap ErrInvalid; others are
// I/O failures.
func CheckDir(tree string, o Options) error {
	var data [2][]byte
	for i, name := range [...]string{RedirectsFile, HeadersFile} {
		b, err := readRule(filepath.Join(tree, name), name)
		if err != nil {
			return err
		}
		data[i] = b
	}
	return Check(data[0], data[1], o)
}

func readRule(p, name string) ([]byte, error) {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	case fi.IsDir():
		return nil, nil // a directory of that name is just served
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s must be a regular file", ErrInvalid, name)
	case fi.Size() > MaxFileBytes:
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, name, MaxFileBytes)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
}

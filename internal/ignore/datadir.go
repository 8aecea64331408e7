package ignore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Marker is the file the server writes into its data directory so that a
// pack or publish can recognise the directory and refuse it.
const Marker = ".cairn-data"

const markerText = "This directory is a cairn data directory: it holds the admin token, the\n" +
	"metadata database and the stored releases. cairn pack and cairn publish\n" +
	"refuse any tree that contains it.\n"

// Names that, together, mark a data directory written before the marker.
const (
	tokenFile  = "token"
	sqliteFile = "cairn.db"
)

// MarkDataDir writes the marker into dir unless it is there.
func MarkDataDir(dir string) error {
	path := filepath.Join(dir, Marker)
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(markerText), 0o644); err != nil {
		return fmt.Errorf("marking the data directory: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("marking the data directory: %w", err)
	}
	return nil
}

// IsDataDir reports whether a directory whose entries have these names is
// a cairn data directory: it holds the marker, or both a token file and a
// SQLite database (a data directory from before the marker).
func IsDataDir(names []string) bool {
	return slices.Contains(names, Marker) ||
		(slices.Contains(names, tokenFile) && slices.Contains(names, sqliteFile))
}

// IsDataDirAt is IsDataDir for a directory that is not listed (one that a
// rule left out), by three Lstat calls.
func IsDataDirAt(abs string) bool {
	exists := func(name string) bool {
		_, err := os.Lstat(filepath.Join(abs, name))
		return err == nil
	}
	return exists(Marker) || (exists(tokenFile) && exists(sqliteFile))
}

// DataDirError is the error for the data directory rel ("" for the root) of
// the tree dir.
func DataDirError(dir, rel string) error {
	where := filepath.Join(dir, filepath.FromSlash(rel))
	return fmt.Errorf("%w: %s holds the server's admin token and database, and is never published "+
		"(not even with --include-ignored); publish a directory that does not contain it, "+
		"or run the server with --data outside the tree", ErrDataDir, where)
}

// CheckDir returns DataDirError when the directory rel of dir, whose entries
// have these names, is a data directory.
func CheckDir(dir, rel string, names []string) error {
	if IsDataDir(names) {
		return DataDirError(dir, rel)
	}
	return nil
}

package s3

// SetMaxCopySize lowers the size above which Put publishes with
// ComposeObject, and returns a function restoring it.
func SetMaxCopySize(n int64) (restore func()) {
	old := maxCopySize
	maxCopySize = n
	return func() { maxCopySize = old }
}

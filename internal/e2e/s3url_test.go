package e2e

import "testing"

// s3URL returns the --blobs URL of a fresh bucket (S3 not wired yet).
func s3URL(t *testing.T) string { return "" }

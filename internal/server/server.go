package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/blob/s3"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// TokenFile is the name of the token file in the data dir.
const TokenFile = "token"

// Run starts the configured roles and serves until ctx ends or a role
// fails. It returns once every role has stopped and the stores are closed.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	p, err := build(ctx, cfg)
	if err != nil {
		return err
	}
	defer p.close()
	return supervise(ctx, p.roles, cfg.Logger, func() {
		cfg.Logger.Info("cairn serving", "api", p.apiAddr, "edge", p.edgeAddr, "data", cfg.DataDir,
			"roles", strings.Join(cfg.Roles, ","))
		if cfg.Ready != nil {
			cfg.Ready(p.apiAddr, p.edgeAddr)
		}
	})
}

// openMeta opens the metadata store of cfg.Database. It is a meta.Full:
// each consumer takes the narrow interface it declares from it.
func openMeta(ctx context.Context, cfg Config) (meta.Full, error) {
	switch {
	case strings.HasPrefix(cfg.Database, "postgres://") || strings.HasPrefix(cfg.Database, "postgresql://"):
		s, err := postgres.Open(ctx, cfg.Database, postgres.WithLogger(cfg.Logger))
		if err != nil {
			return nil, fmt.Errorf("--database: %w", err)
		}
		return s, nil
	case cfg.Database == "" || strings.HasPrefix(cfg.Database, "sqlite://"):
		path := strings.TrimPrefix(cfg.Database, "sqlite://")
		if path == "" {
			path = filepath.Join(cfg.DataDir, "cairn.db")
		}
		s, err := sqlite.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--database: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("--database: unsupported database URL %q (supported: postgres://…, sqlite://PATH, or empty for SQLite in the data dir)", redact(cfg.Database))
}

func openBlobs(ctx context.Context, cfg Config) (blob.Store, error) {
	switch {
	case strings.HasPrefix(cfg.Blobs, "s3://"):
		s, err := s3.New(ctx, cfg.Blobs)
		if err != nil {
			return nil, fmt.Errorf("--blobs: %w", err)
		}
		return s, nil
	case cfg.Blobs == "" || strings.HasPrefix(cfg.Blobs, "file://"):
		dir := strings.TrimPrefix(cfg.Blobs, "file://")
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "blobs")
		}
		s, err := fs.New(dir)
		if err != nil {
			return nil, fmt.Errorf("--blobs: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("--blobs: unsupported blob store URL %q (supported: s3://BUCKET?endpoint=…&region=…, file://DIR, or empty for files in the data dir)", cfg.Blobs)
}

// redact hides a password in a URL for error messages.
func redact(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "…@" + u[i+1:]
		}
	}
	return u
}

// loadToken returns cfg.Token, else the token stored in the data dir,
// creating it (0600) on first start.
func loadToken(cfg Config) (string, error) {
	if cfg.Token != "" {
		return cfg.Token, nil
	}
	path := filepath.Join(cfg.DataDir, TokenFile)
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	t := "cairn_" + hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("create token file: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(t + "\n"); err != nil {
		return "", err
	}
	return t, f.Sync()
}

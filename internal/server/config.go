// Package server builds cairn's pieces from a Config and runs the roles
// asked for (api, edge, …) in one process.
package server

import (
	"fmt"
	"log/slog"
	"strings"
)

// Roles a process can run.
const (
	RoleAPI  = "api"
	RoleEdge = "edge"
)

// Config is everything `cairn server` takes. Each field has a flag and a
// CAIRN_* environment twin in cmd/cairn.
type Config struct {
	DataDir    string   // --data, CAIRN_DATA: SQLite file, blobs, token, staging
	APIAddr    string   // --api-addr: API and registry
	EdgeAddr   string   // --edge-addr
	Database   string   // --database: "" means SQLite in DataDir
	Blobs      string   // --blobs: "" means files under DataDir
	Roles      []string // --roles: subset of api, edge
	Token      string   // --token, CAIRN_TOKEN: "" means generate/read DataDir/token
	BaseDomain string   // --base-domain: edge serves {name}.{base}
	MaxFiles   int64    // --max-files: entries per upload
	MaxBytes   int64    // --max-bytes: uncompressed bytes per upload
	CacheBytes int64    // --cache-bytes: edge hot-file cache
	Logger     *slog.Logger

	// Ready, if set, is called once every listener is bound, with their
	// addresses (tests bind :0).
	Ready func(apiAddr, edgeAddr string)
}

// Default returns the embedded-default configuration.
func Default() Config {
	return Config{
		DataDir:    "./cairn-data",
		APIAddr:    "127.0.0.1:7800",
		EdgeAddr:   "127.0.0.1:7880",
		Roles:      []string{RoleAPI, RoleEdge},
		BaseDomain: "localhost",
		MaxFiles:   100_000,
		MaxBytes:   10 << 30,
		CacheBytes: 256 << 20,
	}
}

// Validate reports the first bad value, naming its flag.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data: must not be empty")
	}
	if len(c.Roles) == 0 {
		return fmt.Errorf("--roles: at least one role is needed")
	}
	for _, r := range c.Roles {
		if r != RoleAPI && r != RoleEdge {
			return fmt.Errorf("--roles: unknown role %q (known: api, edge)", r)
		}
	}
	if c.MaxFiles <= 0 || c.MaxBytes <= 0 {
		return fmt.Errorf("--max-files and --max-bytes: must be positive")
	}
	if c.CacheBytes < 0 {
		return fmt.Errorf("--cache-bytes: must not be negative")
	}
	if strings.Contains(c.BaseDomain, "/") || c.BaseDomain == "" {
		return fmt.Errorf("--base-domain: %q is not a domain", c.BaseDomain)
	}
	return nil
}

// HasRole reports whether role is among c.Roles.
func (c *Config) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

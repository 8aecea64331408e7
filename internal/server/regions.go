package server

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/replica"
	"github.com/cairnhq/cairn/internal/meta"
)

// Regions. --blobs names one blob store, or several, each with a region
// name:
//
//	--blobs s3://bucket?endpoint=…                     one store, region "primary"
//	--blobs 'us=s3://a?endpoint=…,eu=s3://b?endpoint=…'  regions us (the primary) and eu
//
// Entries are separated by commas (write a comma inside a URL as %2C); a
// region name is a DNS label (lowercase letters, digits and '-'); with
// several entries every one is named and has an s3:// or file:// URL. The
// first is the primary: a publish is acknowledged once it holds the bytes,
// and a Replicator, run by every process with the api role, copies them to
// the other regions (see internal/blob/replica). --region names the
// region a process reads from first (default: the primary).

// PrimaryRegion is the name of the region of a single unnamed --blobs URL.
const PrimaryRegion = "primary"

// regionSpec is one entry of --blobs.
type regionSpec struct{ Name, URL string }

var regionName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// parseBlobs splits --blobs into its regions, the primary first.
func parseBlobs(spec string) ([]regionSpec, error) {
	name, _, named := strings.Cut(spec, "=")
	if !named || !regionName.MatchString(strings.TrimSpace(name)) {
		if strings.Contains(spec, ",") && strings.Contains(spec, "=") {
			return nil, fmt.Errorf("--blobs: several stores need a region name each: NAME=URL,NAME=URL")
		}
		return []regionSpec{{PrimaryRegion, spec}}, nil // one store, as before regions
	}
	var out []regionSpec
	seen := map[string]bool{}
	for _, entry := range strings.Split(spec, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(entry), "=")
		switch {
		case !ok || !regionName.MatchString(name):
			return nil, fmt.Errorf("--blobs: entry %q: want NAME=URL with NAME a DNS label (a comma inside a URL is %%2C)", entry)
		case seen[name]:
			return nil, fmt.Errorf("--blobs: region %q given twice", name)
		case !strings.HasPrefix(u, "s3://") && !strings.HasPrefix(u, "file://"):
			return nil, fmt.Errorf("--blobs: region %q: want an s3:// or file:// URL", name)
		}
		seen[name] = true
		out = append(out, regionSpec{name, u})
	}
	return out, nil
}

// validateRegions checks --blobs and --region.
func (c *Config) validateRegions() error {
	regions, err := parseBlobs(c.Blobs)
	if err != nil {
		return err
	}
	if c.ReplicaRetry < 0 {
		return fmt.Errorf("--replica-retry: must not be negative")
	}
	if c.Region == "" {
		return nil
	}
	var names []string
	for _, r := range regions {
		if r.Name == c.Region {
			return nil
		}
		names = append(names, r.Name)
	}
	return fmt.Errorf("--region: %q is not a region of --blobs (%s)", c.Region, strings.Join(names, ", "))
}

// openRegions opens the blob store --blobs names. With several regions it
// is a replica.Store: the primary is opened now, the others on first use
// (an unreachable region does not stop the start), and the Replicator is
// returned for the api role to run; with one it is that store, as before.
// Stores with temporary files are added to temps as they open.
func openRegions(ctx context.Context, cfg Config, store meta.Replicas, temps *tempStores) (blob.Store, *replica.Replicator, error) {
	regions, err := parseBlobs(cfg.Blobs)
	if err != nil {
		return nil, nil, err
	}
	open := func(ctx context.Context, r regionSpec) (blob.Store, error) {
		c := cfg
		c.Blobs = r.URL
		st, err := openBlobs(ctx, c)
		if err != nil && len(regions) > 1 {
			err = fmt.Errorf("region %s: %w", r.Name, err)
		}
		if err == nil {
			temps.add(st)
		}
		return st, err
	}
	primary, err := open(ctx, regions[0])
	if err != nil || len(regions) == 1 {
		return primary, nil, err
	}
	reopen := replica.DefaultReopen
	if cfg.ReplicaRetry > 0 {
		reopen = min(reopen, cfg.ReplicaRetry)
	}
	var others []replica.Region
	for _, r := range regions[1:] {
		others = append(others, replica.Region{Name: r.Name, Store: replica.Lazy(func(ctx context.Context) (blob.Store, error) {
			return open(ctx, r)
		}, reopen)})
	}
	log := cfg.Logger.With("role", "replica")
	s, err := replica.New(replica.Region{Name: regions[0].Name, Store: primary}, others, store,
		replica.Options{Local: cfg.Region, Log: log})
	if err != nil {
		return nil, nil, fmt.Errorf("--blobs: %w", err)
	}
	return s, replica.NewReplicator(s, replica.ReplicatorOptions{MaxBackoff: cfg.ReplicaRetry, Log: log}), nil
}

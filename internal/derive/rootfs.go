package derive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/meta"
)

// DefaultPort is the port of a runtime whose image exposes no TCP port.
const DefaultPort = 8080

// Runtime is what a dynamic version runs, as the image config says
// (docs/design.md, "Runtime"): the command (Entrypoint then Cmd), the
// environment, working directory, user, and the port the app listens on.
type Runtime struct {
	Cmd     []string          `json:"cmd"`
	Env     map[string]string `json:"env"`
	Workdir string            `json:"workdir"`
	User    string            `json:"user"`
	Port    int               `json:"port"`
}

// RuntimeOf reads the runtime defaults from an image config: Entrypoint
// followed by Cmd, Env (a later duplicate wins, as in Docker), WorkingDir
// (default "/"), User, and the lowest TCP port of ExposedPorts (default
// DefaultPort).
func RuntimeOf(c *v1.ConfigFile) Runtime {
	rt := Runtime{Env: map[string]string{}, Workdir: "/", Port: DefaultPort}
	if c == nil {
		return rt
	}
	cfg := c.Config
	rt.Cmd = append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			rt.Env[k] = v
		}
	}
	if cfg.WorkingDir != "" {
		rt.Workdir = cfg.WorkingDir
	}
	rt.User = cfg.User
	var ports []int
	for p := range cfg.ExposedPorts {
		num, proto, _ := strings.Cut(p, "/")
		if proto != "" && proto != "tcp" {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n > 0 && n < 65536 {
			ports = append(ports, n)
		}
	}
	if len(ports) > 0 {
		sort.Ints(ports)
		rt.Port = ports[0]
	}
	return rt
}

// Rootfs is the rootfs release derived from an oci version, with the
// runtime its image config gives.
type Rootfs struct {
	Result
	Runtime Runtime `json:"runtime"`
	// Image is the digest of the image manifest flattened (the version's
	// own manifest, or the platform image of its index).
	Image string `json:"image"`
}

// Rootfs returns the rootfs release derived from version v of deployment
// dep (kind oci), deriving it first if it has not been: the image's layers
// flattened (Flatten) and packed as a rootfs release (Config.Pack). The
// same image gives the same sha256. A collected version: meta.ErrGone; a
// deployment of another kind: meta.ErrInvalid.
func (d *Deriver) Rootfs(ctx context.Context, dep *meta.Deployment, v *meta.Version) (*Rootfs, error) {
	if dep.Kind != meta.KindOCI || v.DeploymentID != dep.ID {
		return nil, fmt.Errorf("%w: deployment %q is of kind %s: only oci versions derive a rootfs", meta.ErrInvalid, dep.Name, dep.Kind)
	}
	if v.Status == meta.StatusCollected {
		return nil, fmt.Errorf("%w: version %d", meta.ErrGone, v.VersionNumber)
	}
	if d.cfg.Images == nil || d.cfg.Pack == nil {
		return nil, fmt.Errorf("%w: no rootfs packer or registry", ErrUnavailable)
	}
	manifest := digest.NewDigestFromEncoded(digest.SHA256, v.ArtifactSHA256)
	img, imgDigest, err := d.cfg.Images.Image(ctx, dep.Name, manifest)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", imgDigest, err)
	}
	res, err := d.once(ctx, meta.DerivedRootfs, v.ArtifactSHA256, func(ctx context.Context) (*Result, error) {
		// Opened again under the derivation's context: img reads its
		// layers under the caller's, who may give up before the others.
		img, _, err := d.cfg.Images.Image(ctx, dep.Name, manifest)
		if err != nil {
			return nil, err
		}
		return d.flattenAndPack(ctx, img, v.ArtifactSHA256)
	})
	if err != nil {
		return nil, err
	}
	return &Rootfs{Result: *res, Runtime: RuntimeOf(cf), Image: imgDigest.String()}, nil
}

// flattenAndPack flattens img into the packer and stores the release.
func (d *Deriver) flattenAndPack(ctx context.Context, img v1.Image, source string) (*Result, error) {
	scratch, err := os.MkdirTemp(d.cfg.TempDir, "derive-rootfs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	f, done, err := d.tempFile("rootfs-*.tar.zst")
	if err != nil {
		return nil, err
	}
	defer done()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(Flatten(ctx, img, pw)) }()
	h := sha256.New()
	res, err := d.cfg.Pack(ctx, pr, io.MultiWriter(f, h), scratch)
	pr.CloseWithError(io.ErrClosedPipe) // stop Flatten if the packer ended early
	if err != nil {
		return nil, fmt.Errorf("derive rootfs of %s: %w", source, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != res.SHA256 {
		return nil, fmt.Errorf("derive rootfs of %s: the packer reported sha256 %s, wrote %s", source, res.SHA256, sum)
	}
	rel := meta.Release{SHA256: sum, Kind: meta.KindRootfs, SizeBytes: res.Size}
	if res.TOC != nil {
		rel.TreeSHA256 = res.TOC.TreeSHA256
	}
	d.cfg.Log.Info("derived rootfs", "source", source, "sha256", sum, "size", res.Size)
	return d.store(ctx, f, &meta.Derived{Kind: meta.DerivedRootfs, SourceSHA256: source, SHA256: sum}, rel)
}

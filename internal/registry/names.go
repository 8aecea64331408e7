package registry

import (
	"regexp"
	"strings"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/opencontainers/go-digest"
)

// Route kinds.
const (
	routePing      = "ping"
	routeBlob      = "blob"
	routeUploads   = "uploads" // POST …/blobs/uploads/
	routeUpload    = "upload"  // …/blobs/uploads/<id>
	routeManifest  = "manifest"
	routeTags      = "tags"
	routeReferrers = "referrers"
	routeCatalog   = "catalog" // /v2/_catalog
)

// route is a parsed /v2/ path.
type route struct {
	kind string
	name string // repository
	ref  string // digest, upload id or manifest reference
}

var (
	routeRE = regexp.MustCompile(`^/v2/(.+)/(?:blobs/uploads/([^/]*)|blobs/([^/]+)|manifests/([^/]+)|(tags/list)|referrers/([^/]+))$`)
	// nameRE is the repository name grammar of the distribution spec.
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// deploymentRE: deployment names are DNS labels ("--" is reserved, see
	// the API); a repository's first component names its deployment.
	deploymentRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// maxNameLen bounds repository names (the spec's 255 for host and name).
const maxNameLen = 255

// parseRoute parses path. An unknown path wraps errNotFound; a malformed
// repository name wraps errNameInvalid.
func parseRoute(path string) (route, error) {
	if path == "/v2/" || path == "/v2" {
		return route{kind: routePing}, nil
	}
	if path == "/v2/_catalog" {
		return route{kind: routeCatalog}, nil
	}
	m := routeRE.FindStringSubmatch(path)
	if m == nil {
		return route{}, public(errNotFound, "no endpoint %.100q", path)
	}
	rt := route{name: m[1]}
	switch {
	case m[5] != "":
		rt.kind = routeTags
	case m[3] != "":
		rt.kind, rt.ref = routeBlob, m[3]
	case m[4] != "":
		rt.kind, rt.ref = routeManifest, m[4]
	case m[6] != "":
		rt.kind, rt.ref = routeReferrers, m[6]
	case m[2] != "":
		rt.kind, rt.ref = routeUpload, m[2]
	default:
		rt.kind = routeUploads
	}
	if err := checkName(rt.name); err != nil {
		return route{}, err
	}
	return rt, nil
}

// checkName validates a repository name.
func checkName(name string) error {
	if len(name) > maxNameLen || !nameRE.MatchString(name) {
		return public(errNameInvalid, "%.300q does not match the repository name grammar", name)
	}
	return nil
}

// deploymentName is the first path component of a repository name.
func deploymentName(repo string) string {
	name, _, _ := strings.Cut(repo, "/")
	return name
}

// checkDeploymentName: a deployment created by a push must have a valid name.
func checkDeploymentName(name string) error {
	if !deploymentRE.MatchString(name) || strings.Contains(name, "--") {
		return public(errNameInvalid, "deployment %q: the first component of a repository names a deployment "+
			"and must be a DNS label (1-63 of a-z, 0-9 and single hyphens)", name)
	}
	return nil
}

// parseDigest validates a digest sent by a client (sha256 or sha512).
func parseDigest(s string) (digest.Digest, error) {
	d, err := blob.ParseDigest(s)
	if err != nil {
		return "", public(errDigestInvalid, "%.200q is not a sha256 or sha512 digest", s)
	}
	return d, nil
}

// reference is a manifest reference: a tag or a digest.
type reference struct {
	tag    string
	digest digest.Digest
}

// parseReference parses a manifest reference: anything with a ':' is a
// digest (errDigestInvalid when malformed), the rest must be a valid tag
// (else the error wraps badTag).
func parseReference(s string, badTag error) (reference, error) {
	if strings.Contains(s, ":") {
		d, err := parseDigest(s)
		return reference{digest: d}, err
	}
	if !tagRE.MatchString(s) {
		return reference{}, public(badTag, "invalid tag %.200q", s)
	}
	return reference{tag: s}, nil
}

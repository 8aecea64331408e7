package registry

import (
	"bytes"
	"encoding/json"
	"mime"
	"regexp"

	"github.com/opencontainers/go-digest"
)

// Manifest media types the registry stores. Config, layer and artifact
// media types may be anything well formed (artifacts).
const (
	mtOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mtOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mtDockerConfig   = "application/vnd.docker.container.image.v1+json"
)

// isIndex reports whether mt is an index (else it is an image manifest).
func isIndex(mt string) bool { return mt == mtOCIIndex || mt == mtDockerList }

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         *int64            `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// manifest is a parsed, validated image manifest or index.
type manifest struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *descriptor       `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Manifests     *[]descriptor     `json:"manifests"`
	Subject       *descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`

	size int64 // of the body
}

// mediaTypeRE is RFC 6838's type/subtype (no parameters).
var mediaTypeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`)

// parseManifest parses and validates a manifest sent with Content-Type ct.
// Its media type is the body's mediaType, else ct; when both are set they
// must agree. Only image manifests and indexes (OCI and Docker schema 2) are
// stored; anything malformed or of another type wraps errManifestInvalid.
// Referenced content is not looked up here.
func parseManifest(ct string, body []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return nil, public(errManifestInvalid, "not a JSON object of a manifest")
	}
	if m.SchemaVersion == nil || *m.SchemaVersion != 2 {
		return nil, public(errManifestInvalid, "schemaVersion must be 2")
	}
	if ct != "" {
		if base, _, err := mime.ParseMediaType(ct); err == nil {
			ct = base
		}
	}
	switch {
	case m.MediaType == "":
		m.MediaType = ct
	case ct != "" && ct != m.MediaType:
		return nil, public(errManifestInvalid, "Content-Type %q does not match the mediaType %q", ct, m.MediaType)
	}
	switch m.MediaType {
	case mtOCIManifest, mtDockerManifest:
		if m.Config == nil || m.Manifests != nil {
			return nil, public(errManifestInvalid, "an image manifest has a config and no manifests")
		}
		if err := checkDescriptor("config", m.Config); err != nil {
			return nil, err
		}
		for i := range m.Layers {
			if err := checkDescriptor("layer", &m.Layers[i]); err != nil {
				return nil, err
			}
		}
	case mtOCIIndex, mtDockerList:
		if m.Manifests == nil || m.Config != nil || m.Layers != nil {
			return nil, public(errManifestInvalid, "an index has manifests and no config or layers")
		}
		for i := range *m.Manifests {
			if err := checkDescriptor("manifest", &(*m.Manifests)[i]); err != nil {
				return nil, err
			}
		}
	case "":
		return nil, public(errManifestInvalid, "no mediaType and no Content-Type")
	default:
		return nil, public(errManifestInvalid, "unsupported manifest media type %.100q", m.MediaType)
	}
	if m.ArtifactType != "" && !mediaTypeRE.MatchString(m.ArtifactType) {
		return nil, public(errManifestInvalid, "malformed artifactType %.100q", m.ArtifactType)
	}
	if m.Subject != nil {
		if err := checkDescriptor("subject", m.Subject); err != nil {
			return nil, err
		}
	}
	m.size = int64(len(body))
	return &m, nil
}

// checkDescriptor validates a descriptor: a well-formed media type, a sha256
// or sha512 digest, a size, and embedded data that matches both.
func checkDescriptor(what string, d *descriptor) error {
	if !mediaTypeRE.MatchString(d.MediaType) {
		return public(errManifestInvalid, "%s: malformed mediaType %.100q", what, d.MediaType)
	}
	dg, err := parseDigest(d.Digest)
	if err != nil {
		return public(errManifestInvalid, "%s: malformed digest %.200q", what, d.Digest)
	}
	if d.Size == nil || *d.Size < 0 {
		return public(errManifestInvalid, "%s %s: missing or negative size", what, dg)
	}
	if d.Data != nil && (int64(len(d.Data)) != *d.Size || dg.Algorithm().FromBytes(d.Data) != dg) {
		return public(errManifestInvalid, "%s %s: data does not match the digest and size", what, dg)
	}
	return nil
}

// digest returns the validated digest (checkDescriptor ran).
func (d *descriptor) digest() digest.Digest { return digest.Digest(d.Digest) }

// size returns the validated size (checkDescriptor ran).
func (d *descriptor) size() int64 { return *d.Size }

// referrerType is the artifact type the referrers API reports: artifactType,
// else (image manifests) the config's media type.
func (m *manifest) referrerType() string {
	if m.ArtifactType == "" && m.Config != nil {
		return m.Config.MediaType
	}
	return m.ArtifactType
}

// subject returns the subject's digest, or "".
func (m *manifest) subject() string {
	if m.Subject == nil {
		return ""
	}
	return m.Subject.Digest
}

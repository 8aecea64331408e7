package registry

import (
	"net/http"
)

// referrers answers GET /v2/<name>/referrers/<digest>[?artifactType=<type>]
// with an image index of the manifests whose subject is digest, filtered by
// artifact type when asked (then OCI-Filters-Applied: artifactType). A
// subject nobody refers to, even in an unknown repository, has an empty index.
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	at := req.URL.Query().Get("artifactType")
	ms, err := r.reg.OCIReferrers(req.Context(), rt.name, d.String(), at)
	if err != nil {
		return err
	}
	type desc struct {
		MediaType    string            `json:"mediaType"`
		Digest       string            `json:"digest"`
		Size         int64             `json:"size"`
		ArtifactType string            `json:"artifactType,omitempty"`
		Annotations  map[string]string `json:"annotations,omitempty"`
	}
	index := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{SchemaVersion: 2, MediaType: mtOCIIndex, Manifests: []desc{}}
	for _, m := range ms {
		index.Manifests = append(index.Manifests, desc{
			MediaType: m.MediaType, Digest: m.Digest, Size: m.Size,
			ArtifactType: m.ArtifactType, Annotations: m.Annotations,
		})
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, index, mtOCIIndex)
}

// Package fcspec holds Firecracker's pinned API description (Swagger 2.0,
// ../shared/firecracker/firecracker.yaml, Firecracker 1.17.0-dev, commit
// 81b38b9) as a validator: it routes a request to its operation and
// checks method, path, path parameters and body against the spec, and it
// checks a response's status and body. Loading, conversion to OpenAPI 3
// and validation are kin-openapi's (openapi2, openapi2conv,
// openapi3filter); nothing here re-implements JSON Schema.
//
// One strictness is added to the spec as written: objects refuse unknown
// fields, because Firecracker's own parser (serde, deny_unknown_fields)
// does, though the spec does not say additionalProperties: false.
package fcspec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvSpec names the spec file when set; otherwise Find looks for
// shared/firecracker/firecracker.yaml above the working directory.
const EnvSpec = "CAIRN_FIRECRACKER_SPEC"

// Version is the spec's info.version that this package is written against.
const Version = "1.17.0-dev"

// Find returns the path of the pinned spec.
func Find() (string, error) {
	if p := os.Getenv(EnvSpec); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "shared", "firecracker", "firecracker.yaml")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("firecracker.yaml: not found above the working directory; set %s", EnvSpec)
		}
		dir = parent
	}
}

// Spec validates requests and responses against the pinned description.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
}

// Load reads and converts the spec at path.
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc2 openapi2.T
	if err := openapi2.UnmarshalFromData(b, &doc2); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if doc2.Info.Version != Version {
		return nil, fmt.Errorf("%s: version %q, want the pinned %q", path, doc2.Info.Version, Version)
	}
	doc, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	doc.Servers = nil // the socket has no host; route on the path alone
	no := false
	for _, s := range doc.Components.Schemas {
		closeObjects(s, &no, map[*openapi3.Schema]bool{})
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &Spec{doc: doc, router: router}, nil
}

func closeObjects(ref *openapi3.SchemaRef, no *bool, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if s.Type.Is("object") && len(s.Properties) > 0 && s.AdditionalProperties.Schema == nil {
		s.AdditionalProperties.Has = no
	}
	for _, p := range s.Properties {
		closeObjects(p, no, seen)
	}
	closeObjects(s.Items, no, seen)
}

// Operation is a request matched to the spec.
type Operation struct {
	ID     string            // the spec's operationId, e.g. "putGuestDriveByID"
	Params map[string]string // path parameters
	input  *openapi3filter.RequestValidationInput
}

// ErrNoRoute: the method and path name no operation of the spec.
var ErrNoRoute = errors.New("no such operation in the Firecracker API")

// Request matches r to an operation and validates it (path parameters and
// body). r.Body is read and replaced, so the caller can read it again.
// The error is kin-openapi's description of what the spec refuses.
func (s *Spec) Request(ctx context.Context, r *http.Request) (*Operation, error) {
	route, params, err := s.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s", ErrNoRoute, r.Method, r.URL.Path)
	}
	body := []byte{}
	if r.Body != nil {
		if body, err = io.ReadAll(io.LimitReader(r.Body, 1<<20)); err != nil {
			return nil, err
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{
			SkipSettingDefaults:               true,
			RejectWhenRequestBodyNotSpecified: true,
			MultiError:                        false,
		},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return &Operation{ID: route.Operation.OperationID, Params: params, input: in}, nil
}

// Response checks that status and body are what the spec gives op. A
// success status must be one the operation lists: the spec's "default"
// response describes errors only.
func (s *Spec) Response(ctx context.Context, op *Operation, status int, body []byte) error {
	if status < 400 && op.input.Route.Operation.Responses.Status(status) == nil {
		return fmt.Errorf("%s: status %d is not among the operation's responses", op.ID, status)
	}
	h := http.Header{}
	if len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: op.input, Status: status, Header: h,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		return fmt.Errorf("%s: response %d: %s", op.ID, status, oneLine(err.Error()))
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
)

// server routes and validates every request against the spec, then hands
// it to the VMM's state machine. Anything the spec refuses is a 400 with
// a fault_message, before any state changes.
type server struct {
	spec *fcspec.Spec
	vmm  *vmm
}

// fault is a 400 answer with its fault_message.
type fault string

func (f fault) Error() string { return string(f) }

func faultf(format string, a ...any) error { return fault(fmt.Sprintf(format, a...)) }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, err := s.spec.Request(r.Context(), r)
	if err != nil {
		if errors.Is(err, fcspec.ErrNoRoute) {
			s.answer(w, r, nil, http.StatusBadRequest, errBody(fmt.Sprintf("Invalid request method and/or path: %s %s.", r.Method, r.URL.Path)))
			return
		}
		s.answer(w, r, nil, http.StatusBadRequest, errBody("An error occurred when deserializing the json body of a request: "+err.Error()))
		return
	}
	var body []byte
	if r.ContentLength != 0 {
		var buf bytes.Buffer
		buf.ReadFrom(r.Body)
		body = buf.Bytes()
	}
	out, err := s.vmm.handle(op.ID, op.Params, body)
	switch {
	case err == nil && out == nil:
		s.answer(w, r, op, http.StatusNoContent, nil)
	case err == nil:
		b, _ := json.Marshal(out)
		s.answer(w, r, op, http.StatusOK, b)
	default:
		var f fault
		if errors.As(err, &f) {
			s.answer(w, r, op, http.StatusBadRequest, errBody(string(f)))
			return
		}
		log.Printf("%s: %v", op.ID, err)
		s.answer(w, r, op, http.StatusInternalServerError, errBody("Internal error: "+err.Error()))
	}
}

func errBody(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"fault_message": msg})
	return b
}

// answer writes the response, first checking it against the spec: a fake
// that answered outside the spec would make the client's tests worthless.
func (s *server) answer(w http.ResponseWriter, r *http.Request, op *fcspec.Operation, status int, body []byte) {
	if op != nil {
		if err := s.spec.Response(r.Context(), op, status, body); err != nil {
			log.Printf("answer outside the spec: %v", err)
			status, body = http.StatusInternalServerError, errBody("fake firecracker: answer outside the spec")
		}
	}
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	w.Write(body)
}

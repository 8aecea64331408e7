package client

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// Error is a non-2xx answer of the API, decoded from its RFC 9457
// problem+json body. Status is always the HTTP status code of the response.
// A 401 (Status == http.StatusUnauthorized) means a missing or wrong token.
type Error struct {
	Status   int
	Type     string // problem type URI, e.g. https://cairn.dev/problems/not-found
	Title    string
	Detail   string
	Instance string // the request's id (urn:cairn:request:…); on a 5xx the server logged the cause under it
}

// Error is one readable line: the detail (or title) and the status,
// e.g. `deployment "x" not found (404)`, and on a 5xx the instance to
// quote to the server's operator.
func (e *Error) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if msg == "" {
		msg = "HTTP error"
	}
	s := fmt.Sprintf("%s (%d)", msg, e.Status)
	if e.Instance != "" && e.Status >= 500 {
		s += " [" + e.Instance + "]"
	}
	return s
}

// StatusOf returns the HTTP status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsForbidden reports whether err is a 403 answer: a valid token without
// the scope the call needs.
func IsForbidden(err error) bool { return StatusOf(err) == http.StatusForbidden }

// IsConflict reports whether err is a 409 answer.
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// decodeError reads resp's problem+json body. A body that is not a problem
// gives the status text, plus the first line of a short text/plain body.
func decodeError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case mt == "application/problem+json" || mt == "application/json":
		var p struct {
			Type     string `json:"type"`
			Title    string `json:"title"`
			Detail   string `json:"detail"`
			Instance string `json:"instance"`
		}
		if json.Unmarshal(body, &p) == nil {
			e.Type, e.Title, e.Detail, e.Instance = p.Type, p.Title, oneLine(p.Detail), p.Instance
		}
	case mt == "text/plain":
		e.Detail = firstLine(string(body))
	}
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	return e
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return l
		}
	}
	return ""
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

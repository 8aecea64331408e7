package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/cairnhq/cairn/internal/audit"
	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/release"
)

// Exit codes. This file is the one place errors become what the user sees.
const (
	exitOK          = 0
	exitError       = 1   // API, usage and local errors
	exitMismatch    = 2   // audit verify, verify: what was checked does not hold
	exitInterrupted = 130 // SIGINT/SIGTERM
)

// report prints err as one line on stderr and returns the exit code.
func (a *app) report(err error) int {
	if err == nil {
		return exitOK
	}
	msg, code := a.describe(err)
	if a.json {
		a.reportJSON(err, oneLine(msg), code)
		return code
	}
	fmt.Fprintf(a.stderr, "cairn: %s\n", oneLine(msg))
	return code
}

// cliProblem is the type of a problem document for a failure that is not
// an API answer (usage, local files, an unreachable API).
const cliProblem = "https://cairn.dev/problems/cli"

// reportJSON prints err under --json as one RFC 9457 problem document on
// stderr: the API's own (type, title, status, detail, instance) when the
// API answered, else a cli one; exit_code is what the process exits with.
func (a *app) reportJSON(err error, msg string, code int) {
	p := map[string]any{"type": cliProblem, "title": "cairn failed", "detail": msg, "exit_code": code}
	var ce *client.Error
	if errors.As(err, &ce) {
		p["title"], p["status"] = ce.Title, ce.Status
		if ce.Detail != "" {
			p["detail"] = ce.Detail
		}
		if ce.Type != "" {
			p["type"] = ce.Type
		}
		if ce.Instance != "" {
			p["instance"] = ce.Instance
		}
	}
	b, _ := json.Marshal(p)
	fmt.Fprintf(a.stderr, "%s\n", b)
}

// describe maps an error to its message and exit code.
func (a *app) describe(err error) (string, int) {
	var ce *client.Error
	var ue *url.Error
	var brk *audit.Break
	var se serverError
	var ws waitStopped
	switch {
	case errors.As(err, &se):
		return se.Error(), exitError
	case errors.As(err, &ws):
		return ws.Error(), exitInterrupted
	case errors.Is(err, context.Canceled):
		return "interrupted", exitInterrupted
	case errors.As(err, &brk), errors.Is(err, audit.ErrHeadNotFound),
		errors.Is(err, errMismatch), errors.Is(err, release.ErrCorrupt):
		return err.Error(), exitMismatch
	case errors.As(err, &ce) && ce.Status == http.StatusUnauthorized:
		return err.Error() + ": " + a.tokenHint(), exitError
	case errors.As(err, &ce):
		return err.Error(), exitError
	case errors.As(err, &ue):
		// A transport failure: name the API, not the request dump.
		return fmt.Sprintf("cannot reach the API at %s: %v", a.api, unwrapOp(ue.Err)), exitError
	}
	return err.Error(), exitError
}

// tokenHint says where the rejected (or missing) token came from.
func (a *app) tokenHint() string {
	if a.tokenSource == "" {
		return fmt.Sprintf("no API token; pass --token, set CAIRN_TOKEN or use --data with the server's data dir (looked in %s)",
			filepath.Join(a.data, "token"))
	}
	return "the API rejected the token from " + a.tokenSource
}

// unwrapOp drops net.OpError's "dial tcp 1.2.3.4:5: " prefix, keeping the cause.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// serverError is a failure of `cairn server`, reported as it is: the wording
// for API calls ("cannot reach the API") does not apply to it. It has no
// Unwrap on purpose.
type serverError struct{ err error }

func (e serverError) Error() string { return e.err.Error() }

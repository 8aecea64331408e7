package faultproxy_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob/faultproxy"
)

const payload = "0123456789abcdefghij" // 20 bytes

func start(t *testing.T) (*faultproxy.Proxy, *http.Client) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Host", r.Host)
		io.WriteString(w, payload)
	}))
	t.Cleanup(up.Close)
	p, err := faultproxy.New(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, &http.Client{Timeout: 2 * time.Second}
}

func get(c *http.Client, url string) (*http.Response, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestPassThroughKeepsHost(t *testing.T) {
	p, c := start(t)
	resp, body, err := get(c, p.URL()+"/x")
	if err != nil || body != payload {
		t.Fatalf("got %q, %v", body, err)
	}
	if h := resp.Header.Get("X-Host"); h != strings.TrimPrefix(p.URL(), "http://") {
		t.Errorf("upstream saw Host %q, want the proxy's", h)
	}
}

func TestFaults(t *testing.T) {
	p, c := start(t)
	p.Set(faultproxy.Plan{Fault: faultproxy.Status500, Count: 2})
	for i, want := range []int{500, 500, 200} {
		if resp, _, err := get(c, p.URL()); err != nil || resp.StatusCode != want {
			t.Errorf("request %d: %v, %v; want %d", i, resp, err, want)
		}
	}
	if p.Requests() != 3 || p.Injected() != 2 {
		t.Errorf("counted %d requests, %d injected; want 3, 2", p.Requests(), p.Injected())
	}

	p.Set(faultproxy.Plan{Fault: faultproxy.Reset, Fraction: 1})
	if _, _, err := get(c, p.URL()); err == nil {
		t.Error("Reset: request succeeded")
	}

	p.Set(faultproxy.Plan{Fault: faultproxy.Truncate, Fraction: 1})
	resp, body, err := get(c, p.URL())
	if !errors.Is(err, io.ErrUnexpectedEOF) || body != payload[:10] || resp.ContentLength != 20 {
		t.Errorf("Truncate: got %q, %v; want the first 10 bytes and ErrUnexpectedEOF", body, err)
	}

	p.Set(faultproxy.Plan{Fault: faultproxy.Stall, Fraction: 1, Stall: 10 * time.Second})
	short := &http.Client{Timeout: 200 * time.Millisecond}
	began := time.Now()
	if _, _, err := get(short, p.URL()); err == nil || time.Since(began) > 2*time.Second {
		t.Errorf("Stall: %v after %v; want a client timeout", err, time.Since(began))
	}

	p.Set(faultproxy.Plan{Fault: faultproxy.StallBody, Fraction: 1, Stall: 10 * time.Second})
	began = time.Now()
	if _, body, err := get(short, p.URL()); err == nil || body != payload[:10] || time.Since(began) > 2*time.Second {
		t.Errorf("StallBody: %q, %v after %v; want half the body, then a timeout", body, err, time.Since(began))
	}

	p.Set(faultproxy.Plan{Fault: faultproxy.Status500, Fraction: 1, Match: func(r *http.Request) bool { return r.Method == http.MethodPut }})
	if _, body, err := get(c, p.URL()); err != nil || body != payload {
		t.Errorf("a GET past a PUT-only plan: %q, %v", body, err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, target := range []string{"http://example.com", "https://127.0.0.1:1", "127.0.0.1:9000", "http://10.0.0.1:80"} {
		if p, err := faultproxy.New(target); err == nil {
			p.Close()
			t.Errorf("New(%q) succeeded", target)
		}
	}
}

package metatest

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/certs"
	"github.com/cairnhq/cairn/internal/meta"
)

// certTests are the conformance tests of meta.Certs, through certmagic's
// Storage semantics (internal/certs): what certmagic's own FileStorage does
// for Store, Load, Delete, Exists, List, Stat and the Locker (RunAll).
var certTests = []test{
	{"Certs/KeyValue", testCertsKeyValue},
	{"Certs/Tree", testCertsTree},
	{"Certs/Lock", testCertsLock},
	{"Certs/StaleLock", testCertsStaleLock},
}

func certStore(t *testing.T, s meta.Store) meta.Certs { return capability[meta.Certs](t, s) }

func testCertsKeyValue(t *testing.T, s meta.Store) {
	st, ctx := certs.NewStorage(certStore(t, s)), t.Context()
	if _, err := st.Load(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := st.Stat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) = %v, want fs.ErrNotExist", err)
	}
	if st.Exists(ctx, "nope") {
		t.Fatal("Exists(missing)")
	}
	bin := []byte{0, 1, 2, 0xff, '\n', '%', '_'}
	for _, v := range [][]byte{[]byte("first"), bin, {}} {
		if err := st.Store(ctx, "certificates/acme/a%_b.test/a.crt", v); err != nil {
			t.Fatal(err)
		}
		got, err := st.Load(ctx, "certificates/acme/a%_b.test/a.crt")
		if err != nil || string(got) != string(v) {
			t.Fatalf("Load = %q, %v; want %q", got, err, v)
		}
		ki, err := st.Stat(ctx, "certificates/acme/a%_b.test/a.crt")
		if err != nil || !ki.IsTerminal || ki.Size != int64(len(v)) || ki.Modified.IsZero() {
			t.Fatalf("Stat = %+v, %v", ki, err)
		}
	}
	if !st.Exists(ctx, "certificates/acme/a%_b.test/a.crt") {
		t.Fatal("Exists(stored) = false")
	}
	if err := st.Delete(ctx, "certificates/acme/a%_b.test/a.crt"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "certificates/acme/a%_b.test/a.crt"); err != nil {
		t.Fatalf("Delete of a deleted key = %v, want nil", err)
	}
	if st.Exists(ctx, "certificates/acme/a%_b.test/a.crt") {
		t.Fatal("deleted key exists")
	}
}

func testCertsTree(t *testing.T, s meta.Store) {
	st, ctx := certs.NewStorage(certStore(t, s)), t.Context()
	keys := []string{"c/a/x.crt", "c/a/x.key", "c/ab/y.crt", "c/b.json", "c/a%/z", "d/e"}
	for _, k := range keys {
		if err := st.Store(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	list := func(path string, rec bool) []string {
		t.Helper()
		got, err := st.List(ctx, path, rec)
		if err != nil {
			t.Fatalf("List(%q, %v): %v", path, rec, err)
		}
		slices.Sort(got)
		return got
	}
	if got, want := list("c", false), []string{"c/a", "c/a%", "c/ab", "c/b.json"}; !slices.Equal(got, want) {
		t.Fatalf("List(c) = %q, want %q", got, want)
	}
	if got, want := list("c", true), []string{"c/a%/z", "c/a/x.crt", "c/a/x.key", "c/ab/y.crt", "c/b.json"}; !slices.Equal(got, want) {
		t.Fatalf("List(c, recursive) = %q, want %q", got, want)
	}
	if got, want := list("c/a", false), []string{"c/a/x.crt", "c/a/x.key"}; !slices.Equal(got, want) {
		t.Fatalf("List(c/a) = %q, want %q (a prefix is a path, not a string prefix)", got, want)
	}
	if got := list("", false); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("List(\"\") = %q", got)
	}
	if _, err := st.List(ctx, "none", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List(none) = %v, want fs.ErrNotExist", err)
	}
	ki, err := st.Stat(ctx, "c/a")
	if err != nil || ki.IsTerminal || ki.Key != "c/a" {
		t.Fatalf("Stat(dir) = %+v, %v", ki, err)
	}
	if !st.Exists(ctx, "c/a") || st.Exists(ctx, "c/x") {
		t.Fatal("Exists of a directory")
	}
	if err := st.Delete(ctx, "c/a"); err != nil {
		t.Fatal(err)
	}
	if got, want := list("", true), []string{"c/a%/z", "c/ab/y.crt", "c/b.json", "d/e"}; !slices.Equal(got, want) {
		t.Fatalf("after Delete(c/a): %q, want %q", got, want)
	}
	for _, k := range []string{"c", "d"} {
		if err := st.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.List(ctx, "", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("store not empty after deletes: %v", err)
	}
}

// testCertsLock: two Storages (two processes) on one store exclude each
// other; Lock waits for Unlock and gives up with its context.
func testCertsLock(t *testing.T, s meta.Store) {
	cs, ctx := certStore(t, s), t.Context()
	a, b := certs.NewStorage(cs), certs.NewStorage(cs)
	if err := a.Lock(ctx, "issue_cert_x.test"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
	defer cancel()
	if err := b.Lock(short, "issue_cert_x.test"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held = %v, want a deadline", err)
	}
	if err := b.Lock(ctx, "issue_cert_y.test"); err != nil {
		t.Fatalf("Lock of another name: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_x.test") }()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) while the other held it", err)
	default:
	}
	if err := a.Unlock(ctx, "issue_cert_x.test"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not return after Unlock")
	}
	if err := a.Unlock(ctx, "issue_cert_x.test"); err == nil {
		t.Fatal("Unlock of a lock held by another Storage succeeded")
	}
	for _, n := range []string{"issue_cert_x.test", "issue_cert_y.test"} {
		if err := b.Unlock(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
}

// testCertsStaleLock: a lock its holder stopped renewing (a crashed
// process) lapses at its expiry; an owner renews its own.
func testCertsStaleLock(t *testing.T, s meta.Store) {
	cs, ctx := certStore(t, s), t.Context()
	ok, err := cs.LockCert(ctx, "n", "dead", time.Millisecond)
	if err != nil || !ok {
		t.Fatalf("LockCert = %v, %v", ok, err)
	}
	if ok, _ := cs.LockCert(ctx, "n", "dead", time.Hour); !ok {
		t.Fatal("owner could not renew its lock")
	}
	if ok, _ := cs.LockCert(ctx, "n", "other", time.Hour); ok {
		t.Fatal("a held lock was taken")
	}
	if err := cs.UnlockCert(ctx, "n", "other"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := cs.LockCert(ctx, "n", "other", time.Hour); ok {
		t.Fatal("UnlockCert by a non-owner released the lock")
	}
	// Renewed with an expiry already past by the store's own clock (the
	// suite runs under a frozen clock too): the lock has lapsed.
	if ok, _ := cs.LockCert(ctx, "n", "dead", -time.Minute); !ok {
		t.Fatal("renew")
	}
	if ok, _ := cs.LockCert(ctx, "n", "other", time.Hour); !ok {
		t.Fatal("an expired lock was not taken")
	}
	if err := cs.UnlockCert(ctx, "n", "other"); err != nil {
		t.Fatal(err)
	}
}

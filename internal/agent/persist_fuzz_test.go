package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/internal/agent/testproc"
	"github.com/cairnhq/cairn/internal/client"
)

// FuzzLoadTracked: whatever instances.json holds, a new agent starts (an
// unreadable file starts the counts from 0), and what it loaded it saves
// back unchanged.
func FuzzLoadTracked(f *testing.F) {
	f.Add([]byte(`{"web-1":{"restarts":2,"crashes":1},"bad-1":{"restarts":4,"failed":true,"last_log":["boom"],"exit_code":3}}`))
	f.Add([]byte(`{"x":{"restarts":-1}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"a":null}`))
	rt, err := testproc.New(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "instances.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := New(Config{API: client.New("http://127.0.0.1:1", ""), Runtime: rt, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		a.saveTracked()
		b2, _ := os.ReadFile(filepath.Join(dir, "instances.json"))
		c, _ := New(Config{API: client.New("http://127.0.0.1:1", ""), Runtime: rt, DataDir: dir})
		c.saveTracked()
		b3, _ := os.ReadFile(filepath.Join(dir, "instances.json"))
		if string(b2) != string(b3) {
			t.Fatalf("saved %s, then %s", b2, b3)
		}
	})
}

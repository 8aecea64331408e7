package agent

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
)

// What the agent remembers of its instances survives its own restarts: a
// new agent over the same data dir adopts the running instances (the
// runtime finds them) and, from instances.json, their restart and crash
// counts, and whether they failed with which last lines. Without it a
// restarted agent would report restarts=0 and run failed instances again.

// saved is one instance's entry in instances.json.
type saved struct {
	Restarts int      `json:"restarts"`
	Crashes  int      `json:"crashes,omitempty"`
	Failed   bool     `json:"failed,omitempty"`
	LastLog  []string `json:"last_log,omitempty"`
	ExitCode *int     `json:"exit_code,omitempty"`
}

func (a *Agent) stateFile() string { return filepath.Join(a.cfg.DataDir, "instances.json") }

// loadTracked reads instances.json; a missing or unreadable file starts
// from nothing (the counts restart at 0, the instances keep running).
func (a *Agent) loadTracked() {
	if a.cfg.DataDir == "" {
		return
	}
	b, err := os.ReadFile(a.stateFile())
	if err != nil {
		if !os.IsNotExist(err) {
			a.cfg.Log.Warn("agent state unreadable; instance counts start at 0", "err", err)
		}
		return
	}
	var m map[string]saved
	if err := json.Unmarshal(b, &m); err != nil {
		a.cfg.Log.Warn("agent state unreadable; instance counts start at 0", "err", err)
		return
	}
	for id, s := range m {
		a.track[id] = &tracked{restarts: s.Restarts, crashes: s.Crashes, failed: s.Failed, lastLog: s.LastLog, exitCode: s.ExitCode}
	}
	a.saved = b
}

// saveTracked writes instances.json when it changed (atomically: a
// temporary file renamed over it). Call with a.mu held.
func (a *Agent) saveTracked() {
	if a.cfg.DataDir == "" {
		return
	}
	m := make(map[string]saved, len(a.track))
	for id, t := range a.track {
		m[id] = saved{Restarts: t.restarts, Crashes: t.crashes, Failed: t.failed, LastLog: t.lastLog, ExitCode: t.exitCode}
	}
	b, err := json.Marshal(m)
	if err != nil || bytes.Equal(b, a.saved) {
		return
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		a.cfg.Log.Warn("saving agent state", "err", err)
		return
	}
	tmp := a.stateFile() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		err = os.Rename(tmp, a.stateFile())
		if err != nil {
			a.cfg.Log.Warn("saving agent state", "err", err)
			return
		}
	} else {
		a.cfg.Log.Warn("saving agent state", "err", err)
		return
	}
	a.saved = b
}

package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// envKey is the flag annotation naming a flag's CAIRN_* environment twin.
const envKey = "cairn_env"

// bindEnv gives flags environment twins: pairs of flag name, variable name.
func bindEnv(fs *pflag.FlagSet, pairs ...string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		f := fs.Lookup(pairs[i])
		if f == nil {
			panic("bindEnv: no flag " + pairs[i])
		}
		_ = fs.SetAnnotation(pairs[i], envKey, []string{pairs[i+1]})
		f.Usage += " (env " + pairs[i+1] + ")"
	}
}

// applyEnv sets every flag of fs that was not given on the command line
// from its environment twin, if that is set. The flag wins over the
// variable. A bad value is an error naming the variable. fromEnv records
// which flags the environment set.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string, fromEnv map[string]string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		names := f.Annotations[envKey]
		if err != nil || f.Changed || len(names) == 0 {
			return
		}
		v := getenv(names[0])
		if v == "" {
			return
		}
		if e := f.Value.Set(v); e != nil {
			var ne *strconv.NumError
			if errors.As(e, &ne) {
				e = ne.Err
			}
			err = fmt.Errorf("%s: invalid value %q for --%s: %v", names[0], v, f.Name, e)
			return
		}
		fromEnv[f.Name] = names[0]
	})
	return err
}

// blame adds the variable that set a flag to an error about the flag.
func (a *app) blame(flag string, err error) error {
	if env := a.fromEnv[flag]; env != "" && err != nil {
		return fmt.Errorf("%w (set by %s)", err, env)
	}
	return err
}

// blameConfig finds the flag a server.Config error names ("--roles: …").
func (a *app) blameConfig(err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "--") {
		return err
	}
	name, _, _ := strings.Cut(msg[2:], ":")
	name, _, _ = strings.Cut(name, " ")
	return a.blame(name, err)
}

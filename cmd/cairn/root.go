package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/server"
)

// defaultAPI is the API base URL when neither --api nor CAIRN_API is set.
const defaultAPI = "http://127.0.0.1:7800"

// app holds one invocation's I/O, environment and global flags.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrTTY      bool // show progress bars
	runServer      func(context.Context, server.Config) error

	// global flags
	api, token, data string
	json             bool

	fromEnv     map[string]string // flag name → the CAIRN_* variable that set it
	tokenSource string            // where the token came from, for error hints
}

func newApp(stdout, stderr io.Writer, getenv func(string) string) *app {
	return &app{stdout: stdout, stderr: stderr, getenv: getenv, runServer: server.Run, fromEnv: map[string]string{}}
}

// run executes one command line and returns the process exit code.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	return a.report(root.ExecuteContext(ctx))
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "cairn",
		Short: "cairn turns build output into immutable releases and serves them",
		Long: "cairn turns build output into immutable, content-addressed releases,\n" +
			"serves static releases from an edge and rolls back by moving a pointer.",
		Version:           buildVersion(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup(cmd) },
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.api, "api", defaultAPI, "API base URL")
	pf.StringVar(&a.token, "token", "", "API token (default: the token file in the data dir)")
	pf.StringVar(&a.data, "data", server.Default().DataDir, "data directory")
	pf.BoolVar(&a.json, "json", false, "print the API records as JSON")
	bindEnv(pf, "api", "CAIRN_API", "token", "CAIRN_TOKEN", "data", "CAIRN_DATA")

	root.AddCommand(a.serverCmd(), a.packCmd(), a.publishCmd(), a.versionsCmd(),
		a.activateCmd(), a.rollbackCmd(), a.domainCmd(), a.gcCmd(), a.auditCmd(), a.verifyCmd(),
		a.deploymentsCmd(), a.deploymentCmd(), a.versionCmd(), a.eventsCmd(), a.tokenCmd(),
		a.agentCmd(), a.hostsCmd(), a.hostCmd(), a.psCmd(), a.scaleCmd(), a.logsCmd(),
		a.buildsCmd(), a.rebuildCmd(), a.restoreCmd())
	return root
}

// setup applies the CAIRN_* environment twins of flags not given on the
// command line, and checks the global flags.
func (a *app) setup(cmd *cobra.Command) error {
	if err := applyEnv(cmd.Flags(), a.getenv, a.fromEnv); err != nil {
		return err
	}
	u, err := url.Parse(a.api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return a.blame("api", fmt.Errorf("--api: %q is not an http(s) URL", a.api))
	}
	return nil
}

// client returns an API client with the token found by resolveToken.
func (a *app) client() *client.Client {
	c := client.New(a.api, a.resolveToken())
	c.UserAgent = "cairn-cli/" + buildVersion()
	return c
}

// resolveToken finds the API token: --token, else CAIRN_TOKEN, else the
// file "token" in the data dir (--data, CAIRN_DATA, ./cairn-data). A missing
// or unreadable file means no token: every API call then answers 401.
func (a *app) resolveToken() string {
	if t := strings.TrimSpace(a.token); t != "" {
		a.tokenSource = "--token"
		if env := a.fromEnv["token"]; env != "" {
			a.tokenSource = env
		}
		return t
	}
	path := filepath.Join(a.data, "token")
	b, err := os.ReadFile(path)
	if t := strings.TrimSpace(string(b)); err == nil && t != "" {
		a.tokenSource = path
		return t
	}
	a.tokenSource = ""
	return ""
}

// exactArgs wants n positional arguments and answers with the usage line.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("usage: %s", cmd.UseLine())
		}
		return nil
	}
}

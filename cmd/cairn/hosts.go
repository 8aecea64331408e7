package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/agent"
	"github.com/cairnhq/cairn/internal/meta"
)

// agentCmd is `cairn agent`: the host agent (its own process).
func (a *app) agentCmd() *cobra.Command {
	var driver, capacity, region, listen, advertise, bridge, subnet, kernel, guestInit, fcBin, jailer string
	var maxCrashes int
	var backoff time.Duration
	cmd := &cobra.Command{
		Use:   "agent [--driver runc|qemu-microvm|firecracker] [--kernel vmlinux] [--capacity cpu=2,memory=4GiB,instances=50] [--region R]",
		Short: "Run the host agent: register with the API and run this host's instances",
		Long: "Run the host agent. It registers this host with the API (--api) using an\n" +
			"agent-scoped token (--token: cairn token create --scope agent), heartbeats,\n" +
			"long-polls its desired instances and runs them with --driver. It never\n" +
			"opens the metadata store. Instances keep running when the agent stops; an\n" +
			"agent started again over the same --data adopts them.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			capa, err := agent.ParseCapacity(capacity)
			if err != nil {
				return fmt.Errorf("--capacity: %w", err)
			}
			if err := checkBridge(bridge, subnet); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(a.stderr, nil))
			tok := a.resolveToken()
			rt, err := agent.NewRuntime(driver, agent.DriverOptions{DataDir: a.data, APIURL: a.api, Token: tok, Bridge: bridge, Subnet: subnet, Log: log,
				Kernel: kernel, GuestInit: guestInit, Firecracker: fcBin, Jailer: jailer})
			if err != nil {
				return err
			}
			// On the way out the runtime releases what is not an
			// instance's (the spare network namespaces); instances keep
			// running for the next agent to adopt.
			if c, ok := rt.(interface{ Close() error }); ok {
				defer c.Close()
			}
			ag, err := agent.New(agent.Config{API: a.client(), Runtime: rt, DataDir: a.data, Region: region,
				Capacity: capa, Listen: listen, Advertise: advertise, MaxCrashes: maxCrashes, BackoffBase: backoff, Log: log})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return ag.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&driver, "driver", "runc", "how instances run: runc (containers), qemu-microvm or firecracker (microVMs)")
	f.StringVar(&kernel, "kernel", "", "qemu-microvm, firecracker: the guest kernel, an uncompressed vmlinux with its modules/ beside it (scripts/guest-kernel)")
	f.StringVar(&guestInit, "guest-init", "", "qemu-microvm, firecracker: the static guest init (default: cairn-guest-init beside this binary, else on $PATH)")
	f.StringVar(&fcBin, "firecracker", "", "firecracker: the Firecracker binary (default: firecracker on $PATH)")
	f.StringVar(&jailer, "jailer", "", "firecracker: the jailer binary (default: jailer on $PATH when there; none otherwise)")
	f.StringVar(&capacity, "capacity", "", "what this host offers: cpu=2,memory=4GiB,instances=50 (a key left out is not limited)")
	f.StringVar(&region, "region", "", "the host's region")
	f.StringVar(&listen, "listen", "127.0.0.1:0", "where the agent serves instance logs to the API")
	f.IntVar(&maxCrashes, "max-crashes", 5, "an instance that exits this many times in a row is failed")
	f.DurationVar(&backoff, "backoff", time.Second, "the first restart delay after a crash; it doubles up to 30s")
	f.StringVar(&bridge, "bridge", "cairn0", "the host bridge instances get their addresses on (every driver)")
	f.StringVar(&subnet, "subnet", "10.89.0.0/16", "the IPv4 range of --bridge that instance addresses come from (every driver)")
	f.StringVar(&advertise, "advertise", "", "the URL the API reaches --listen at (default: http:// and the listener's address)")
	return cmd
}

// checkBridge checks --bridge (a Linux interface name) and --subnet (an
// IPv4 CIDR with room for instances).
func checkBridge(bridge, subnet string) error {
	if !bridgeRE.MatchString(bridge) {
		return fmt.Errorf("--bridge %q: want an interface name of 1-15 of a-z, A-Z, 0-9, _, . and -", bridge)
	}
	ip, n, err := net.ParseCIDR(subnet)
	if err != nil || ip.To4() == nil {
		return fmt.Errorf("--subnet %q: want an IPv4 CIDR such as 10.89.0.0/16", subnet)
	}
	if ones, _ := n.Mask.Size(); ones > 29 {
		return fmt.Errorf("--subnet %q: /%d leaves no room for instances; want /29 or wider", subnet, ones)
	}
	return nil
}

var bridgeRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)

// hostsCmd is `cairn hosts`.
func (a *app) hostsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hosts",
		Short: "List the compute hosts: driver, isolation, capacity, used, state",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			hs, err := a.client().ListHosts(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				if hs == nil {
					hs = []meta.Host{}
				}
				return printJSON(a.stdout, hs)
			}
			printHosts(a.stdout, hs)
			return nil
		},
	}
}

func printHosts(w interface{ Write([]byte) (int, error) }, hs []meta.Host) {
	if len(hs) == 0 {
		fmt.Fprintln(w, "no hosts: start one with cairn agent")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tREGION\tDRIVER\tISOLATION\tACCEL\tINSTANCES\tCPU\tMEMORY\tSTATE\tLAST SEEN")
	for _, h := range hs {
		// used/capacity of each ("any": the host sets no limit)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%s\t%s/%s\t%s/%s\t%s\t%s\n", h.ID, h.Hostname, dash(h.Region), h.Driver, h.Isolation, dash(h.Accel),
			h.Used.Instances, limit(int64(h.Capacity.Instances), strconv.Itoa(h.Capacity.Instances)),
			strconv.FormatFloat(h.Used.CPU, 'f', -1, 64),
			limit(int64(h.Capacity.CPU*1000), strconv.FormatFloat(h.Capacity.CPU, 'f', -1, 64)),
			humanBytes(h.Used.MemoryBytes),
			limit(h.Capacity.MemoryBytes, humanBytes(h.Capacity.MemoryBytes)), h.State, formatTime(h.LastSeen))
	}
	tw.Flush()
}

func limit(n int64, s string) string {
	if n <= 0 {
		return "any"
	}
	return s
}

// psCmd is `cairn ps NAME`.
func (a *app) psCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ps NAME",
		Short: "List a deployment's instances: host, version, release, tree digest, health, address, restarts",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			is, err := a.client().ListInstances(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				if is == nil {
					is = []meta.Instance{}
				}
				return printJSON(a.stdout, is)
			}
			autostop := ""
			if d, err := a.client().GetDeployment(cmd.Context(), args[0]); err == nil && d.Desired != nil {
				autostop = d.Desired.Autostop
			}
			if len(is) == 0 {
				if autostop != "" {
					fmt.Fprintf(a.stdout, "%s has no instances: asleep (autostop %s); a request wakes it\n", args[0], autostop)
					return nil
				}
				fmt.Fprintf(a.stdout, "%s has no instances (cairn scale %s N)\n", args[0], args[0])
				return nil
			}
			if autostop != "" {
				defer fmt.Fprintf(a.stdout, "autostop %s: the instances stop after %s without a request\n", autostop, autostop)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INSTANCE\tHOST\tVERSION\tRELEASE\tTREE\tSTATE\tADDRESS\tRESTARTS\tEXIT\tSTARTED")
			for _, in := range is {
				exit, started := "-", "-"
				if in.ExitCode != nil {
					exit = strconv.Itoa(*in.ExitCode)
				}
				if in.StartedAt != nil {
					started = formatTime(*in.StartedAt)
				}
				fmt.Fprintf(tw, "%s\t%s\tv%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", in.ID, in.HostID, in.VersionNumber,
					dash(shortSHA(in.Release)), dash(shortSHA(in.TreeDigest)), in.State, dash(in.Addr), in.Restarts, exit, started)
			}
			return tw.Flush()
		},
	}
}

// scaleCmd is `cairn scale NAME N`.
func (a *app) scaleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scale NAME N",
		Short: "Run N instances of a deployment's active version on the hosts",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 {
				return fmt.Errorf("N %q must be a count (0 or more)", args[1])
			}
			d, err := a.client().SetReplicas(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"deployment": d.Name, "replicas": n})
			}
			fmt.Fprintf(a.stdout, "%s: %d replicas (cairn ps %s)\n", d.Name, n, d.Name)
			return nil
		},
	}
}

// logsCmd is `cairn logs NAME [--instance ID] [-f]` and `cairn logs
// --build ID`.
func (a *app) logsCmd() *cobra.Command {
	var instance, build string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME [--instance ID] [-f] | logs --build ID",
		Short: "Show an app's instance logs (stdout and stderr), streamed from their hosts, or a build's log",
		Long: "Show the logs of a deployment's instances, streamed from the agents through\n" +
			"the API. Without --instance every instance is shown, each line prefixed\n" +
			"with its instance id when there are several. -f follows new lines.\n" +
			"--build ID prints the kept log of a build, rebuild or restore (its last\n" +
			"256 KiB; cairn builds NAME lists them); NAME is not needed then.",
		Args: func(cmd *cobra.Command, args []string) error {
			if build != "" {
				if len(args) > 1 || instance != "" || follow {
					return fmt.Errorf("usage: cairn logs --build ID (no --instance, no -f)")
				}
				return nil
			}
			return exactArgs(1)(cmd, args)
		},
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client()
			if build != "" {
				return a.buildLog(cmd.Context(), c, build)
			}
			ids := []string{instance}
			if instance == "" {
				is, err := c.ListInstances(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, in := range is {
					ids = append(ids, in.ID)
				}
				if len(ids) == 0 {
					return fmt.Errorf("%s has no instances", args[0])
				}
			}
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make([]error, len(ids))
			for i, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					prefix := ""
					if len(ids) > 1 {
						prefix = id + " | "
					}
					lw := &lineWriter{mu: &mu, w: a.stdout, prefix: prefix}
					errs[i] = c.InstanceLogs(cmd.Context(), args[0], id, follow, lw)
					lw.flush()
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil && cmd.Context().Err() == nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&instance, "instance", "", "only this instance")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().StringVar(&build, "build", "", "print the log of this build (bld_…) instead")
	return cmd
}

// lineWriter writes whole lines, prefixed, under a shared lock.
type lineWriter struct {
	mu     *sync.Mutex
	w      interface{ Write([]byte) (int, error) }
	prefix string
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		l.mu.Lock()
		fmt.Fprintf(l.w, "%s%s\n", l.prefix, l.buf[:i])
		l.mu.Unlock()
		l.buf = l.buf[i+1:]
	}
}

func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.Write([]byte("\n"))
	}
}

// hostCmd is `cairn host drain ID`.
func (a *app) hostCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "Act on one compute host (drain)"}
	drain := &cobra.Command{
		Use:   "drain ID",
		Short: "Take no new instances on a host and move its instances elsewhere (replacements first)",
		Long: "Drain a host: it takes no new instances, and each of its instances is\n" +
			"replaced on another host; an instance stops once its replacement is healthy.\n" +
			"The host stays draining (also through agent restarts).",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := a.client().DrainHost(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, h)
			}
			_, err = fmt.Fprintf(a.stdout, "%s: %s; its instances move to other hosts (cairn hosts, cairn ps NAME)\n", h.ID, h.State)
			return err
		},
	}
	cmd.AddCommand(drain)
	return cmd
}

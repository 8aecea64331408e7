// Command probe is the test instance of internal/runtime: a static HTTP
// server on $PORT whose endpoints look at the instance from inside.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "hog": // allocate and touch memory until killed
			var keep [][]byte
			for {
				b := make([]byte, 1<<20)
				for i := range b {
					b[i] = 1
				}
				keep = append(keep, b)
			}
		case "spin":
			for n := 0; ; n++ {
			}
		case "sleep":
			time.Sleep(time.Hour)
			return
		case "exit":
			n, _ := strconv.Atoi(os.Args[2])
			os.Exit(n)
		}
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s\n", os.Getenv("GREETING"))
	})
	http.HandleFunc("/pids", func(w http.ResponseWriter, r *http.Request) {
		des, _ := os.ReadDir("/proc")
		n := 0
		for _, de := range des {
			if _, err := strconv.Atoi(de.Name()); err == nil {
				n++
			}
		}
		fmt.Fprint(w, n)
	})
	http.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), time.Second)
		if err != nil {
			fmt.Fprint(w, "refused: ", err)
			return
		}
		c.Close()
		fmt.Fprint(w, "connected")
	})
	http.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		err := os.WriteFile(r.URL.Query().Get("path"), []byte("from the instance\n"), 0o644)
		fmt.Fprint(w, err)
	})
	http.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			fmt.Fprint(w, "error: ", err)
			return
		}
		w.Write(b)
	})
	http.HandleFunc("/hog", func(w http.ResponseWriter, r *http.Request) {
		err := exec.Command("/probe", "hog").Run()
		fmt.Fprint(w, err) // "signal: killed" when the OOM killer took it
	})
	http.HandleFunc("/forkbomb", func(w http.ResponseWriter, r *http.Request) {
		var cmds []*exec.Cmd
		var err error
		for i := 0; i < 10000; i++ {
			c := exec.Command("/probe", "sleep")
			if err = c.Start(); err != nil {
				break
			}
			cmds = append(cmds, c)
		}
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
		fmt.Fprintf(w, "%d %v", len(cmds), err)
	})
	http.HandleFunc("/burn", func(w http.ResponseWriter, r *http.Request) {
		// ?procs=N processes spin until the instance ends (many, so that
		// they want more than their limit on a busy host too).
		n, _ := strconv.Atoi(r.URL.Query().Get("procs"))
		for range max(n, 1) {
			c := exec.Command("/probe", "spin")
			c.Env = []string{"GOMAXPROCS=1"}
			if err := c.Start(); err != nil {
				fmt.Fprint(w, err)
				return
			}
		}
		fmt.Fprint(w, "burning")
	})
	http.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.URL.Query().Get("line"))
	})
	fmt.Println("probe listening on", os.Getenv("PORT"))
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

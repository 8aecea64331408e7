// hostapp is the app of the agent tests: it answers on $PORT with its pid
// (or $BODY),
// logs one line per request, and exits with status 3 on /crash.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	log.SetFlags(0)
	if os.Getenv("CRASH_AT_START") == "1" {
		log.Print("crashing at start")
		os.Exit(3)
	}
	body := os.Getenv("BODY") // answered instead of the pid when set
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if body != "" {
			fmt.Fprintln(w, body)
			return
		}
		log.Printf("request %s", r.URL.RequestURI())
		fmt.Fprintf(w, "pid %d\n", os.Getpid())
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) {
		log.Print("crash requested")
		os.Exit(3)
	})
	log.Printf("listening on %s", os.Getenv("PORT"))
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}

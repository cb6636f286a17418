// Command upstream is the backend every target of bench/run.sh forwards to.
// It must cost as little as possible, so that the figures measure the proxy
// in front of it: it reads and discards the request body and answers 200
// with a small fixed JSON body, to any method and path.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
)

// body is what every request gets: small, and JSON, like an API's answer.
var body = []byte(`{"ok":true,"items":[1,2,3]}` + "\n")

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to serve on")
	flag.Parse()
	length := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body is part of a real backend's job, and a proxy
		// that streams it must see it consumed.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*listen, h))
}

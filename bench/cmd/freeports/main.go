// Command freeports prints n TCP ports on 127.0.0.1 that were free a moment
// ago, one a line, for bench/run.sh to hand to processes that need a port
// number up front (nginx, redis-server, edgeguard's config file). All n are
// held open until every one is found, so they are distinct.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
)

func main() {
	n := flag.Int("n", 1, "how many ports")
	flag.Parse()
	if *n < 1 || *n > 1000 {
		log.Fatalf("freeports: -n %d: want 1..1000", *n)
	}
	ls := make([]net.Listener, 0, *n)
	for range *n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatalf("freeports: finding a free port: %v", err)
		}
		ls = append(ls, l)
	}
	for _, l := range ls {
		fmt.Fprintln(os.Stdout, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
}

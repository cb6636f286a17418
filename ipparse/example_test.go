package ipparse_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/edgeguard/edgeguard/ipparse"
)

func ExampleResolver_Resolve() {
	r, err := ipparse.NewResolver(ipparse.Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	// The client claims to be 6.6.6.6; the trusted load balancer 10.0.0.2
	// appended the address it saw, 203.0.113.7, and the peer 10.0.0.1
	// appended 10.0.0.2.
	h.Add("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.2")

	res, _ := r.Resolve(netip.MustParseAddrPort("10.0.0.1:5000"), h)
	fmt.Println(res.Addr, res.Source, res.Hops)

	// The same header from a peer nobody trusts means nothing.
	res, _ = r.Resolve(netip.MustParseAddrPort("198.51.100.1:5000"), h)
	fmt.Println(res.Addr, res.Source)
	// Output:
	// 203.0.113.7 header 1
	// 198.51.100.1 peer
}

func ExampleResolver_ForwardedFor() {
	r, _ := ipparse.NewResolver(ipparse.Config{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Header:         "Forwarded",
	})
	h := http.Header{"Forwarded": {`for=6.6.6.6, for="[2001:db8::7]:4711";proto=https, for=10.0.0.2`}}
	start := netip.MustParseAddrPort("10.0.0.1:5000")
	res, _ := r.Resolve(start, h)
	fmt.Println(res.Addr, res.Port, res.Key)
	fmt.Println(r.ForwardedFor(res, start.Addr(), h))
	// Output:
	// 2001:db8::7 4711 2001:db8::
	// 2001:db8::7, 10.0.0.2, 10.0.0.1
}

func ExampleProxyProtocol_Listen() {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	pp := ipparse.ProxyProtocol{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	ln := pp.Listen(inner)
	defer ln.Close()

	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(c, "PROXY TCP4 203.0.113.7 127.0.0.1 51234 80\r\nhello\n")
	}()

	c, err := ln.Accept()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n') // the first read takes the header
	_, start, viaProxy := ipparse.ConnAddrs(c)
	fmt.Print(start, " ", viaProxy, " ", line)
	// Output:
	// 203.0.113.7:51234 true hello
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/internal/httpkit"
)

const explainUsage = "usage: edgeguard explain -config FILE -request FILE.http [-peer IP | -client IP] [-json]"

// cmdExplain prints what each stage says about one raw request, as a dry
// run (edgeguard.Explain): no limiter of a running edgeguard counts it, no
// strike, no ban, nothing is written to Redis.
func cmdExplain(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("explain", "explain [-config] FILE -request FILE.http [-peer IP | -client IP] [-json]", 1, stdout, stderr)
	reqPath := c.fs.String("request", "", "raw HTTP/1.1 request file")
	peerFlag := c.fs.String("peer", "", "TCP peer the request comes from; the client is resolved from it and the request's headers (default 127.0.0.1)")
	clientFlag := c.fs.String("client", "", "the client itself: the request comes straight from it, its forwarding headers are dropped")
	asJSON := c.fs.Bool("json", false, "print the explanation as JSON")
	cfgPath, err := c.configFile(args)
	if err != nil {
		return err
	}
	path := &cfgPath
	if *reqPath == "" || (*peerFlag != "" && *clientFlag != "") {
		fmt.Fprintln(stderr, explainUsage)
		return errUsage
	}
	from, flag := *peerFlag, "-peer"
	switch {
	case *clientFlag != "":
		from, flag = *clientFlag, "-client"
	case from == "":
		from = "127.0.0.1"
	}
	addr, err := netip.ParseAddr(from)
	if err != nil {
		return fmt.Errorf("%s %q: not an IP address", flag, from)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	req, err := readRequest(*reqPath)
	if err != nil {
		return err
	}
	req.RemoteAddr = netip.AddrPortFrom(addr, 40000).String()
	if flag == "-client" {
		httpkit.StripClientAddress(req.Header)
		req.Header.Del("Forwarded")
		req.Header.Del(cfg.ClientIP.WithDefaults().Header)
	}
	ex, err := edgeguard.Explain(cfg, req, time.Now(), edgeguard.WithLogger(slog.New(slog.DiscardHandler)), edgeguard.WithDir(filepath.Dir(*path)))
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ex)
	}
	printExplanation(stdout, ex)
	return nil
}

func readRequest(path string) (*http.Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open request: %w", err)
	}
	defer f.Close()
	req, err := http.ReadRequest(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("parse request %s: %w", path, err)
	}
	return req, nil
}

func printExplanation(w io.Writer, ex *edgeguard.Explanation) {
	fmt.Fprintf(w, "client %s (from %s, peer %s)\n", ex.Client, ex.Source, ex.Peer)
	for _, s := range ex.Stages {
		verdict := "allow"
		switch s.Verdict {
		case "shadow_deny":
			verdict = fmt.Sprintf("deny %d (shadow: would deny, allows)", s.Status)
		case "deny":
			verdict = fmt.Sprintf("deny %d", s.Status)
		}
		line := fmt.Sprintf("%-11s %s", s.Stage, verdict)
		if s.Reason != "" {
			line += "  reason=" + s.Reason
		}
		if len(s.RuleIDs) > 0 {
			line += fmt.Sprintf("  rules=%v score=%d", s.RuleIDs, s.Score)
		}
		if s.RetryAfter != "" {
			line += "  retry_after=" + s.RetryAfter
		}
		fmt.Fprintln(w, line)
		for _, n := range s.Notes {
			fmt.Fprintf(w, "            %s\n", n)
		}
	}
	fmt.Fprintf(w, "result: %s (dry run: nothing was counted, banned or written)\n", ex.Result)
}

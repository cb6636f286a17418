package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("validate", "validate [-config] FILE", 1, stdout, stderr)
	flagPath := c.configFlag()
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	path, err := c.configPath(*flagPath, pos)
	if err != nil {
		return err
	}
	s := &server{path: path}
	cfg, err := s.load()
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	// Building the Guard loads what the file points at: rule packs, lists.
	// It starts no listener and makes no request.
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)), edgeguard.WithDir(filepath.Dir(path)))
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	_ = g.Close()
	if err := checkTLSFiles(cfg, filepath.Dir(path)); err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

func cmdExplain(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("explain", "explain -config FILE -request FILE.http [-client IP]", 0, stdout, stderr)
	path := c.configFlag()
	reqPath := c.fs.String("request", "", "raw HTTP/1.1 request file")
	client := c.fs.String("client", "127.0.0.1", "TCP peer address the request comes from")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if *path == "" || *reqPath == "" {
		fmt.Fprintln(stderr, "edgeguard explain: -config FILE and -request FILE.http are required")
		c.help(stderr)
		return errUsage
	}
	peer, err := netip.ParseAddr(*client)
	if err != nil {
		return fmt.Errorf("-client %q: not an IP address", *client)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	f, err := os.Open(*reqPath)
	if err != nil {
		return fmt.Errorf("open request: %w", err)
	}
	defer f.Close()
	req, err := http.ReadRequest(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("parse request %s: %w", *reqPath, err)
	}
	req.RemoteAddr = netip.AddrPortFrom(peer, 40000).String()
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)), edgeguard.WithDir(filepath.Dir(*path)))
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	defer g.Close()
	ex, err := g.Explain(req, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "client %s (from %s)\n", ex.Client, ex.Source)
	for _, v := range ex.Verdicts {
		verdict := "allow"
		switch {
		case v.Deny && v.Shadow:
			verdict = fmt.Sprintf("deny %d (shadow: would deny, allows)", v.StatusCode())
		case v.Deny:
			verdict = fmt.Sprintf("deny %d", v.StatusCode())
		}
		line := fmt.Sprintf("%-11s %s", v.Stage, verdict)
		if v.Reason != "" {
			line += "  reason=" + v.Reason
		}
		if len(v.RuleIDs) > 0 {
			line += fmt.Sprintf("  rules=%v score=%d", v.RuleIDs, v.Score)
		}
		if v.RetryAfter > 0 {
			line += "  retry_after=" + v.RetryAfter.String()
		}
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "result: %s\n", ex.Result)
	return nil
}

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("demo", "demo [-listen ADDR] [-admin ADDR]", 0, stdout, stderr)
	listen := c.fs.String("listen", "127.0.0.1:8080", "edge address")
	admin := c.fs.String("admin", "127.0.0.1:9090", "admin address")
	if _, err := c.parse(args); err != nil {
		return err
	}
	up, err := startDemoUpstream()
	if err != nil {
		return err
	}
	defer up.Close()
	s := &server{stderr: stderr, build: func() (*config.Config, error) {
		return demoConfig(*listen, *admin, "http://"+up.Addr().String())
	}}
	cfg, err := s.load()
	if err != nil {
		return fmt.Errorf("the embedded demo config: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return s.serve(ctx, cfg, func() { printDemo(stdout, s.edgeAddr.String(), s.adminAddr.String()) })
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

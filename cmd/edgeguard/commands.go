package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/waf"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "edgeguard validate: -config FILE is required")
		return errUsage
	}
	s := &server{path: *path}
	cfg, err := s.load()
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	// Building the Guard loads what the file points at: rule packs, lists.
	// It starts no listener and makes no request.
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)), edgeguard.WithDir(filepath.Dir(*path)))
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	_ = g.Close()
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return nil
}

func cmdRules(args []string, stdout, stderr io.Writer) error {
	if len(args) < 2 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: edgeguard rules test DIR...")
		return errUsage
	}
	cfg := waf.Config{Mode: filters.ModeBlock}
	passed, failed, err := waf.TestPacks(stdout, cfg, filters.Env{}, args[1:]...)
	if err != nil {
		return fmt.Errorf("rules test: %w", err)
	}
	if failed > 0 || passed == 0 {
		if passed == 0 && failed == 0 {
			fmt.Fprintln(stderr, "edgeguard rules test: the packs have no tests")
		}
		return errReported
	}
	return nil
}

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "edge address")
	admin := fs.String("admin", "127.0.0.1:9090", "admin address")
	if err := fs.Parse(args); err != nil {
		return errUsage
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

var _ = errors.New

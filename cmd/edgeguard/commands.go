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
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("validate", "validate [-config] FILE", 1, stdout, stderr)
	path, err := c.configFile(args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	// Building the Guard loads what the file points at: rule packs, lists.
	// It starts no listener and makes no request.
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)), edgeguard.WithDir(filepath.Dir(path)))
	if err == nil {
		_ = g.Close()
	}
	if err := cfg.Locate(errors.Join(err, checkTLSFiles(cfg, filepath.Dir(path)))); err != nil {
		fmt.Fprintln(stdout, err)
		return errReported
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

// loadConfig reads the config file at path, for run, validate and
// reload. When the file has problems, the stages its sound blocks describe
// are built too (a draft, config.Error.Draft), so that one run reports
// every problem of the file, each at its line: a pack that does not
// compile or a certificate file that does not load beside a misspelt key.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	var ce *config.Error
	if errors.As(err, &ce) && ce.Draft() != nil {
		draft := ce.Draft()
		dir := filepath.Dir(path)
		built := edgeguard.CheckStages(draft, edgeguard.WithDir(dir))
		return nil, ce.With(draft.Locate(errors.Join(built, checkTLSFiles(draft, dir), needUpstream(draft))))
	}
	if err != nil {
		return nil, err
	}
	if err := needUpstream(cfg); err != nil {
		return nil, cfg.Locate(err)
	}
	return cfg, nil
}

// needUpstream refuses a file that names nowhere to forward to: the
// binary forwards what passes (the Go API's middleware needs no upstream),
// unless it only decides for proxies (auth.listen).
func needUpstream(cfg *config.Config) error {
	if cfg.Forward.Upstream == "" && len(cfg.Forward.Upstreams) == 0 && cfg.Auth.Listen == "" {
		return filters.FieldErrorf("upstream", "required to run (or upstreams and routes)")
	}
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

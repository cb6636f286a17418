package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/ipparse"
	"github.com/redis/go-redis/v9"
)

type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}

func cmdRun(args []string, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *path == "" {
		fmt.Fprintln(stderr, "edgeguard run: -config FILE is required")
		return errUsage
	}
	s := &server{path: *path, stderr: stderr}
	cfg, err := s.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errReported
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return s.serve(ctx, cfg, nil)
}

// server is the running binary: the listeners, the Guard in service and
// the reload loop. The Guard is swapped atomically; requests in flight
// finish on the Guard they started on.
type server struct {
	path   string                         // config file; "" when the config is built in (demo)
	build  func() (*config.Config, error) // for a built-in config
	stderr io.Writer

	level   slog.LevelVar
	log     *slog.Logger
	metrics *edgeguard.Metrics
	cur     atomic.Pointer[edgeguard.Guard]
	admin   atomic.Pointer[http.Handler]
	reloadM sync.Mutex

	// ready is closed once both listeners are bound (tests wait on it).
	ready     chan struct{}
	edgeAddr  net.Addr
	adminAddr net.Addr
	authAddr  net.Addr
}

func (s *server) load() (*config.Config, error) {
	if s.build != nil {
		return s.build()
	}
	cfg, err := config.Load(s.path)
	if err != nil {
		return nil, err
	}
	if cfg.Forward.Upstream == "" && len(cfg.Forward.Upstreams) == 0 && cfg.Auth.Listen == "" {
		return nil, fmt.Errorf("%s:1: upstream: required to run (or upstreams and routes)", s.path)
	}
	return cfg, nil
}

func (s *server) dir() string {
	if s.path == "" {
		return ""
	}
	return filepath.Dir(s.path)
}

func (s *server) newLogger(cfg *config.Config, out io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	s.level.Set(lvl)
	opts := &slog.HandlerOptions{Level: &s.level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(out, opts))
	}
	return slog.New(slog.NewJSONHandler(out, opts))
}

// install builds a Guard for cfg as the successor of the one in service,
// swaps it in and closes the old one.
func (s *server) install(cfg *config.Config) error {
	prev := s.cur.Load()
	opts := []edgeguard.Option{edgeguard.WithLogger(s.log), edgeguard.WithMetrics(s.metrics), edgeguard.WithDir(s.dir())}
	if prev != nil {
		opts = append(opts, edgeguard.WithPrevious(prev))
	}
	g, err := edgeguard.New(cfg, opts...)
	if err != nil {
		return err
	}
	h := g.AdminHandler()
	s.cur.Store(g)
	s.admin.Store(&h)
	g.Activate()
	if prev != nil {
		// Requests already inside prev finish on it: close it (its audit
		// file, a Redis client the new one did not take over) once they
		// have, or after shutdown_timeout at the latest.
		go func() {
			prev.Drain(cfg.Server.ShutdownTimeout.D())
			_ = prev.Close()
		}()
	}
	return nil
}

// restartOnly refuses a reload that changes what is bound at start: the
// listeners, TLS, the PROXY protocol policy of the edge listener and the
// server limits. Applying the rest while these silently kept their old
// values would leave, for example, an admin socket on a public address
// validated against a new loopback address without a token.
func restartOnly(old, cfg *config.Config) error {
	var changed []string
	if cfg.Listen != old.Listen {
		changed = append(changed, "listen")
	}
	if cfg.TLS != old.TLS {
		changed = append(changed, "tls")
	}
	if cfg.Admin.Listen != old.Admin.Listen {
		changed = append(changed, "admin.listen")
	}
	if cfg.Auth.Listen != old.Auth.Listen {
		changed = append(changed, "auth.listen")
	}
	if !reflect.DeepEqual(cfg.ClientIP.ProxyProtocol, old.ClientIP.ProxyProtocol) {
		changed = append(changed, "client_ip.proxy_protocol")
	}
	if cfg.Server != old.Server {
		changed = append(changed, "server")
	}
	if cfg.Log.Format != old.Log.Format {
		changed = append(changed, "log.format")
	}
	if len(changed) > 0 {
		return fmt.Errorf("%s: changed, which takes a restart; nothing was reloaded", strings.Join(changed, ", "))
	}
	return nil
}

// reload rereads the config. A config that does not load or build is
// refused with its reason logged, and the Guard in service stays.
func (s *server) reload() error {
	s.reloadM.Lock()
	defer s.reloadM.Unlock()
	cfg, err := s.load()
	if err == nil {
		err = restartOnly(s.cur.Load().Config(), cfg)
	}
	if err == nil {
		err = s.install(cfg)
	}
	if err != nil {
		s.log.Error("reload refused; the previous config keeps serving", "config", s.path, "error", err.Error())
		return err
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	s.level.Set(lvl)
	s.log.Info("reloaded", "config", s.path)
	return nil
}

func (s *server) serve(ctx context.Context, cfg *config.Config, started func()) error {
	// Take SIGHUP before anything can announce that we serve: its default
	// action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	logOut := newBatchWriter(s.stderr)
	defer logOut.Close()
	s.log = s.newLogger(cfg, logOut)
	// go-redis reports pool dial failures through its own global logger;
	// route them into ours, once, at debug: the stages count and log
	// Redis failures themselves.
	redis.SetLogger(redisLog{s.log})
	s.metrics = edgeguard.NewMetrics()
	if s.ready == nil {
		s.ready = make(chan struct{})
	}
	if err := s.install(cfg); err != nil {
		fmt.Fprintln(s.stderr, err)
		return errReported
	}
	defer func() { _ = s.cur.Load().Close() }()

	edgeLn, err := s.edgeListener(cfg)
	if err != nil {
		return err
	}
	edge := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.cur.Load().ServeHTTP(w, r) }),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		ReadTimeout:       cfg.Server.ReadTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ConnContext:       ipparse.ConnContext,
		ConnState:         s.trackConn,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	servers := []*http.Server{edge}
	listeners := []net.Listener{edgeLn}
	s.edgeAddr = edgeLn.Addr()

	if cfg.Admin.Listen != "off" {
		adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			edgeLn.Close()
			return fmt.Errorf("listen on admin address %s: %w", cfg.Admin.Listen, err)
		}
		s.adminAddr = adminLn.Addr()
		admin := &http.Server{
			Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*s.admin.Load()).ServeHTTP(w, r) }),
			ReadHeaderTimeout: 5 * time.Second,
			IdleTimeout:       60 * time.Second,
		}
		servers = append(servers, admin)
		listeners = append(listeners, adminLn)
	}

	if srv, ln, err := s.authServer(cfg); err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	} else if srv != nil {
		servers = append(servers, srv)
		listeners = append(listeners, ln)
	}

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() {
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	s.log.Info("serving", "listen", s.edgeAddr.String(), "admin", fmt.Sprint(s.adminAddr), "auth", fmt.Sprint(s.authAddr), "stages", cfg.Stages)
	close(s.ready)
	if started != nil {
		started()
	}

	for {
		select {
		case <-hup:
			_ = s.reload()
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-ctx.Done():
			s.log.Info("draining", "timeout", s.cur.Load().Config().Server.ShutdownTimeout.D().String())
			sctx, cancel := context.WithTimeout(context.Background(), s.cur.Load().Config().Server.ShutdownTimeout.D())
			defer cancel()
			var errs []error
			for _, srv := range servers {
				errs = append(errs, srv.Shutdown(sctx))
			}
			s.log.Info("stopped")
			return errors.Join(errs...)
		}
	}
}

// edgeListener binds the edge address and stacks, in order: PROXY protocol
// from trusted load balancers, accept-time refusal of banned clients, TLS.
// Refusal comes before TLS so a banned client costs no handshake.
func (s *server) edgeListener(cfg *config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	pp := cfg.ClientIP.ProxyProtocol
	ln = pp.Listen(ln)
	ln = &refusingListener{
		Listener:     ln,
		proxyTrusted: pp.Trusts(),
		refuse: func(a netip.Addr) bool {
			g := s.cur.Load()
			return a.IsValid() && !g.TrustedProxy(a) && g.RefuseConn(a, time.Now())
		},
	}
	if cfg.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("load TLS certificate %s / key %s: %w", cfg.TLS.Cert, cfg.TLS.Key, err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	}
	return ln, nil
}

func (s *server) trackConn(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		s.metrics.ConnOpened()
	case http.StateClosed, http.StateHijacked:
		s.metrics.ConnClosed()
	}
}

var _ = filters.ModeBlock

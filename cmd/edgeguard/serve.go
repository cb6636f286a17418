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
	"github.com/edgeguard/edgeguard/internal/bodymem"
	"github.com/edgeguard/edgeguard/ipparse"
	"github.com/redis/go-redis/v9"
)

type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("run", "run [-config] FILE", 1, stdout, stderr)
	path, err := c.configFile(args)
	if err != nil {
		return err
	}
	s := &server{path: path, stderr: stderr}
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
	logOut  io.Writer // the log's batched output, which access lines share
	metrics *edgeguard.Metrics
	cur     atomic.Pointer[generation]
	admin   atomic.Pointer[http.Handler]
	reloadM sync.Mutex

	// ready is closed once both listeners are bound (tests wait on it).
	ready     chan struct{}
	edgeAddr  net.Addr
	adminAddr net.Addr
	authAddr  net.Addr

	tls *edgeTLS // the edge listener's certificates; nil for plain HTTP
}

func (s *server) load() (*config.Config, error) {
	if s.build != nil {
		return s.build()
	}
	return loadConfig(s.path)
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
	if cfg.Log.Format == "json" || cfg.Log.Access.Format == "combined" {
		// JSON access lines are encoded by the Guard straight into the
		// log's output, cheaper than through the handler; under a text
		// log they go through the handler like every other record.
		opts = append(opts, edgeguard.WithAccessWriter(s.logOut))
	}
	if prev != nil {
		opts = append(opts, edgeguard.WithPrevious(prev.Guard))
	}
	g, err := edgeguard.New(cfg, opts...)
	if err != nil {
		return cfg.Locate(err) // FILE:LINE for each stage that did not build
	}
	h := g.AdminHandler()
	s.cur.Store(newGeneration(g))
	s.admin.Store(&h)
	g.Activate()
	if prev != nil {
		prev.retire()
		go s.closeWhenIdle(prev, cfg.Server.ShutdownTimeout.D())
	}
	return nil
}

// closeWhenIdle closes a retired generation (its audit file, a Redis
// client the successor did not take over) once its last request has
// finished, however long that takes: closing under a running request would
// pull its WAF transaction or its store away. After shutdown_timeout it
// says in the log what it is waiting for.
func (s *server) closeWhenIdle(prev *generation, warnAfter time.Duration) {
	t := time.NewTimer(warnAfter)
	defer t.Stop()
	start := time.Now()
	select {
	case <-prev.Idle():
	case <-t.C:
		s.log.Warn("the previous config still serves requests begun before the reload; it is closed when they finish",
			"in_flight", prev.users.Load(), "after", warnAfter.String())
		<-prev.Idle()
	}
	_ = prev.Close()
	s.log.Info("previous config closed", "after", time.Since(start).String())
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
	if tlsRestartOnly(old.TLS, cfg.TLS) {
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
		err = s.reloadTLS(cfg)
	}
	if err == nil {
		err = s.install(cfg)
	}
	if err != nil {
		s.metrics.ReloadFailed()
		s.log.Error("reload refused; the previous config keeps serving", "config", s.path, "error", err.Error())
		return err
	}
	s.metrics.ReloadSucceeded(time.Now())
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
	s.logOut = logOut
	s.log = s.newLogger(cfg, logOut)
	// go-redis reports pool dial failures through its own global logger;
	// route them into ours, once, at debug: the stages count and log
	// Redis failures themselves.
	redis.SetLogger(redisLog{s.log})
	s.metrics = edgeguard.NewMetrics()
	pace := &clientPace{bodyTimeout: cfg.Server.ClientBodyTimeout.D(), sendTimeout: cfg.Server.SendTimeout.D(),
		pool: bodymem.NewPool(int64(cfg.Server.MaxBodyMemory))}
	pace.register(s.metrics.Registry)
	if s.ready == nil {
		s.ready = make(chan struct{})
	}
	if err := s.install(cfg); err != nil {
		fmt.Fprintln(s.stderr, err)
		return errReported
	}
	s.metrics.Loaded(time.Now())
	defer func() { _ = s.cur.Load().Close() }()

	edgeLn, err := s.edgeListener(cfg)
	if err != nil {
		return err
	}
	edge := &http.Server{
		Handler:           pace.wrap(s.serveHTTP),
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
	httpSrv, httpLn, err := s.httpServer(cfg)
	if err != nil {
		for _, ln := range listeners {
			ln.Close()
		}
		return err
	}
	if httpSrv != nil {
		servers = append(servers, httpSrv)
		listeners = append(listeners, httpLn)
	}
	defer s.closeTLS()

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
	s.startTLS(ctx, cfg)
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
	e, err := s.newEdgeTLS(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if e != nil {
		s.tls = e
		ln = tls.NewListener(ln, e.tlsConfig())
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

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
)

// defaultCertWatch is how often certificate files are checked for changes
// when tls.watch_interval is not set.
const defaultCertWatch = 5 * time.Second

// certFiles serves the certificate files of the tls block: the pair whose
// names cover the name the client asks for, reloaded on SIGHUP and when a
// file changes on disk. Go's tls picks among the pairs; this type only
// keeps them current. A pair that fails to load (a key that does not match
// its new certificate while the files are being replaced, a file missing)
// leaves every pair in service as it was. A certificate whose file holds
// its issuer and whose leaf names an OCSP responder is served with the
// responder's answer stapled, asked again halfway through its validity.
type certFiles struct {
	log        *slog.Logger
	ocspClient *http.Client

	mu      sync.Mutex // serialises reloads; guards pairs, stamp and staples
	pairs   []config.CertFile
	stamp   []os.FileInfo // the files as last tried; nil entries for missing ones
	lastErr string        // the last load error logged by the watcher
	staples []staple      // of the certificates in service, in their order

	certs atomic.Pointer[[]tls.Certificate]
}

// newCertFiles loads every pair of t, with relative paths resolved against
// dir. A pair that does not load is an error.
func newCertFiles(t config.TLS, dir string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{log: log, ocspClient: &http.Client{Timeout: ocspTimeout}}
	if err := c.reload(t, dir); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the pairs of t again and puts them in service, or leaves
// the ones in service and returns why.
func (c *certFiles) reload(t config.TLS, dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	pairs := t.Pairs()
	for i := range pairs {
		pairs[i].Cert = resolve(dir, pairs[i].Cert)
		pairs[i].Key = resolve(dir, pairs[i].Key)
	}
	certs, err := loadPairs(pairs)
	c.pairs, c.stamp = pairs, stampOf(pairs)
	if err != nil {
		return err
	}
	c.staples = c.restaple(certs, nil, time.Now())
	c.certs.Store(&certs)
	c.lastErr = ""
	return nil
}

// loadPairs reads each certificate and key file pair.
func loadPairs(pairs []config.CertFile) ([]tls.Certificate, error) {
	certs := make([]tls.Certificate, 0, len(pairs))
	for _, p := range pairs {
		cert, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: loading certificate %s with key %s: %w", p.Cert, p.Key, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// resolve makes a relative path of the config relative to its directory.
func resolve(dir, path string) string {
	if path == "" || filepath.IsAbs(path) || dir == "" {
		return path
	}
	return filepath.Join(dir, path)
}

// stampOf stats every file of pairs; a missing one is nil.
func stampOf(pairs []config.CertFile) []os.FileInfo {
	var out []os.FileInfo
	for _, p := range pairs {
		for _, f := range []string{p.Cert, p.Key} {
			st, _ := os.Stat(f)
			out = append(out, st)
		}
	}
	return out
}

// sameStamp reports whether no file changed: same size, same modification
// time, and the same file (a replacement renamed into place within the
// clock's granularity, with the same size, is still a change).
func sameStamp(a, b []os.FileInfo) bool {
	return slices.EqualFunc(a, b, func(x, y os.FileInfo) bool {
		if x == nil || y == nil {
			return x == nil && y == nil
		}
		return x.Size() == y.Size() && x.ModTime().Equal(y.ModTime()) && os.SameFile(x, y)
	})
}

// poll reloads the pairs when a file changed since the last attempt, and
// renews the OCSP staples that are due at now. A failure is logged once per
// state of the files (a half-replaced pair fails, then loads once its
// second file lands).
func (c *certFiles) poll(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp := stampOf(c.pairs)
	if sameStamp(stamp, c.stamp) {
		if staplesDue(c.staples, now) {
			certs := slices.Clone(*c.certs.Load())
			c.staples = c.restaple(certs, c.staples, now)
			c.certs.Store(&certs)
		}
		return
	}
	c.stamp = stamp
	certs, err := loadPairs(c.pairs)
	if err != nil {
		if err.Error() != c.lastErr {
			c.lastErr = err.Error()
			c.log.Error("certificate files changed but do not load; the previous certificates keep serving", "error", err.Error())
		}
		return
	}
	c.lastErr = ""
	c.staples = c.restaple(certs, nil, now)
	c.certs.Store(&certs)
	c.log.Info("certificates reloaded", "trigger", "file change", "certificates", describe(certs))
}

// watch polls the files every interval until ctx ends.
func (c *certFiles) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.poll(now)
		}
	}
}

// match returns the first pair that serves hello's name, or nil.
func (c *certFiles) match(hello *tls.ClientHelloInfo) *tls.Certificate {
	certs := *c.certs.Load()
	for i := range certs {
		if hello.ServerName != "" && hello.SupportsCertificate(&certs[i]) == nil {
			return &certs[i]
		}
	}
	return nil
}

// fallback is the pair served when none matches: the first.
func (c *certFiles) fallback() *tls.Certificate {
	if certs := *c.certs.Load(); len(certs) > 0 {
		return &certs[0]
	}
	return nil
}

// describe names each certificate by its first name and serial, for logs.
func describe(certs []tls.Certificate) []string {
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		if c.Leaf == nil {
			continue
		}
		name := c.Leaf.Subject.CommonName
		if len(c.Leaf.DNSNames) > 0 {
			name = c.Leaf.DNSNames[0]
		}
		out = append(out, fmt.Sprintf("%s serial %s expires %s", name, c.Leaf.SerialNumber, c.Leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	return out
}

// edgeTLS is the edge listener's certificate source: the files first, then
// ACME, then the first file for a client that asked for no name or one
// nothing covers.
type edgeTLS struct {
	files *certFiles   // nil without files
	acme  *acmeManager // nil without acme
	dir   string
}

func (e *edgeTLS) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if e.files != nil {
		if c := e.files.match(hello); c != nil {
			return c, nil
		}
	}
	challenge := slices.Contains(hello.SupportedProtos, acmeTLS1)
	if e.acme != nil && (hello.ServerName != "" || e.files == nil || challenge) {
		c, err := e.acme.magic.GetCertificate(hello)
		if err == nil || e.files == nil || challenge {
			return c, err
		}
	}
	if e.files != nil {
		if c := e.files.fallback(); c != nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("tls: no certificate for %q", hello.ServerName)
}

// tlsConfig is the edge listener's: HTTP/2 and HTTP/1.1, and the TLS-ALPN-01
// challenge protocol when ACME offers it.
func (e *edgeTLS) tlsConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if e.acme != nil && e.acme.tlsALPN {
		protos = append(protos, acmeTLS1)
	}
	return &tls.Config{GetCertificate: e.getCertificate, MinVersion: tls.VersionTLS12, NextProtos: protos}
}

// newEdgeTLS loads the certificate files and sets up ACME for cfg.TLS; nil
// when the edge listener speaks plain HTTP.
func (s *server) newEdgeTLS(cfg *config.Config) (*edgeTLS, error) {
	t := cfg.TLS
	if !t.Enabled() {
		return nil, nil
	}
	e := &edgeTLS{dir: s.dir()}
	if len(t.Pairs()) > 0 {
		f, err := newCertFiles(t, e.dir, s.log)
		if err != nil {
			return nil, err
		}
		e.files = f
	}
	if t.ACME != nil {
		m, err := newACMEManager(t, cfg.Listen, e.dir, s.log)
		if err != nil {
			return nil, err
		}
		e.acme = m
	}
	return e, nil
}

// startTLS starts what keeps the certificates current (the file watcher,
// ACME management) once the listeners are up: the ACME challenges are
// answered on them. It stops when ctx ends.
func (s *server) startTLS(ctx context.Context, cfg *config.Config) {
	e := s.tls
	if e == nil {
		return
	}
	if e.files != nil {
		every := cfg.TLS.WatchInterval.D()
		if every <= 0 {
			every = defaultCertWatch
		}
		go e.files.watch(ctx, every)
	}
	if e.acme != nil {
		e.acme.start(ctx)
	}
}

// reloadTLS reads the certificate files again on SIGHUP. What takes a
// restart (turning TLS on or off, the ACME settings, the HTTP listener) has
// been refused before; the list of pairs itself may change.
func (s *server) reloadTLS(cfg *config.Config) error {
	if s.tls == nil || s.tls.files == nil {
		return nil
	}
	if err := s.tls.files.reload(cfg.TLS, s.tls.dir); err != nil {
		return err
	}
	s.log.Info("certificates reloaded", "trigger", "SIGHUP", "certificates", describe(*s.tls.files.certs.Load()))
	return nil
}

// tlsRestartOnly names what of the tls block a reload cannot change: the
// listeners' protocol and the ACME manager are set up at start.
func tlsRestartOnly(old, cfg config.TLS) bool {
	oldFiles, newFiles := len(old.Pairs()) > 0, len(cfg.Pairs()) > 0
	return old.Enabled() != cfg.Enabled() || oldFiles != newFiles || old.HTTPListen != cfg.HTTPListen ||
		!sameACME(old.ACME, cfg.ACME) || old.WatchInterval != cfg.WatchInterval
}

func sameACME(a, b *config.ACME) bool {
	if a == nil || b == nil {
		return a == b
	}
	same := a.Email == b.Email && slices.Equal(a.Domains, b.Domains) && a.CA == b.CA && a.CARoot == b.CARoot &&
		a.Storage == b.Storage && slices.Equal(a.Challenges, b.Challenges) && a.RenewInterval == b.RenewInterval
	return same && (a.OnDemand == nil) == (b.OnDemand == nil) && (a.OnDemand == nil || *a.OnDemand == *b.OnDemand)
}

// httpListenAddr is where the plain-HTTP listener binds, or "".
func httpListenAddr(t config.TLS) string {
	switch {
	case t.HTTPListen == "off":
		return ""
	case t.HTTPListen != "":
		return t.HTTPListen
	case t.ACME.UsesChallenge(config.ChallengeHTTP01):
		return ":80"
	}
	return ""
}

// httpServer is the plain-HTTP listener beside an HTTPS edge: it answers
// ACME HTTP-01 challenges and redirects everything else to https on the
// edge's port. Nil when there is none.
func (s *server) httpServer(cfg *config.Config) (*http.Server, net.Listener, error) {
	addr := httpListenAddr(cfg.TLS)
	if s.tls == nil || addr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on tls.http_listen %s: %w", addr, err)
	}
	_, edgePort, _ := net.SplitHostPort(s.edgeAddr.String())
	var h http.Handler = redirectHTTPS(edgePort)
	if s.tls.acme != nil {
		h = s.tls.acme.issuer.HTTPChallengeHandler(h)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return srv, ln, nil
}

// redirectHTTPS sends a request to the same host and path over https on
// port (the default port is left out of the URL).
func redirectHTTPS(port string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "https only", http.StatusBadRequest)
			return
		}
		if port != "443" && port != "" {
			host = net.JoinHostPort(host, port)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// closeTLS stops ACME maintenance.
func (s *server) closeTLS() {
	if s.tls != nil && s.tls.acme != nil {
		s.tls.acme.stop()
	}
}

// checkTLSFiles loads the certificate files (and the ACME CA root) of cfg
// the way run does, relative to dir, for validate and for a draft of a
// file with problems: every pair that does not load is reported at its
// key.
func checkTLSFiles(cfg *config.Config, dir string) error {
	t := cfg.TLS
	var errs []error
	check := func(field string, p config.CertFile) {
		cert, key := resolve(dir, p.Cert), resolve(dir, p.Key)
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			errs = append(errs, filters.FieldErrorf(field, "loading certificate %s with key %s: %w", cert, key, err))
		}
	}
	if t.Cert != "" && t.Key != "" {
		check("tls.cert", config.CertFile{Cert: t.Cert, Key: t.Key})
	}
	for i, c := range t.Certificates {
		if c.Cert != "" && c.Key != "" {
			check(fmt.Sprintf("tls.certificates[%d].cert", i), c)
		}
	}
	if a := t.ACME; a != nil && a.CARoot != "" {
		if _, err := loadRoots(resolve(dir, a.CARoot)); err != nil {
			errs = append(errs, &filters.FieldError{Field: "tls.acme.ca_root", Err: err})
		}
	}
	return errors.Join(errs...)
}

package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edgeguard/edgeguard/config"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"
)

// acmeTLS1 is the ALPN protocol of the TLS-ALPN-01 challenge.
const acmeTLS1 = acmez.ACMETLS1Protocol

// askTimeout bounds the on-demand approval request.
const askTimeout = 10 * time.Second

// acmeManager obtains, renews and staples certificates through certmagic:
// the ACME protocol, both challenges, renewal (with the CA's renewal
// information), OCSP stapling and storage locking are certmagic's; this
// type only translates the tls.acme block and reports what happens.
type acmeManager struct {
	cfg     *config.ACME
	log     *slog.Logger
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	tlsALPN bool
	cancel  context.CancelFunc
}

// newACMEManager sets certmagic up for a; edgeListen is the edge address,
// where TLS-ALPN-01 is answered, and dir resolves relative paths.
func newACMEManager(t config.TLS, edgeListen, dir string, log *slog.Logger) (*acmeManager, error) {
	a := t.ACME
	log = log.With("component", "acme")
	m := &acmeManager{cfg: a, log: log, tlsALPN: a.UsesChallenge(config.ChallengeTLSALPN01)}
	zl := zap.New(slogCore{h: log.Handler()})
	// config.Parse has put an unset storage under $STATE_DIRECTORY when
	// that is set; a config built by hand may still leave it empty.
	storage := resolve(dir, a.Storage)
	if a.Storage == "" {
		storage = resolve(dir, config.DefaultACMEStorage)
	}
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return nil, fmt.Errorf("tls.acme: creating storage directory %s: %w", storage, err)
	}
	every := a.RenewInterval.D()
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: every,
		Logger:             zl,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: storage},
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	if a.OnDemand != nil {
		m.magic.OnDemand = &certmagic.OnDemandConfig{DecisionFunc: askApproval(a.OnDemand.Ask)}
	}
	tmpl := certmagic.ACMEIssuer{
		CA:                      a.CA,
		Email:                   a.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    !a.UsesChallenge(config.ChallengeHTTP01) || httpListenAddr(t) == "",
		DisableTLSALPNChallenge: !m.tlsALPN,
		Logger:                  zl,
	}
	if tmpl.CA == "" {
		tmpl.CA = certmagic.LetsEncryptProductionCA
	}
	// The challenges are answered by edgeguard's own listeners, which
	// certmagic finds bound when it tries these ports and so leaves to us.
	if _, port, err := net.SplitHostPort(edgeListen); err == nil {
		tmpl.AltTLSALPNPort, _ = strconv.Atoi(port)
	}
	if _, port, err := net.SplitHostPort(httpListenAddr(t)); err == nil {
		tmpl.AltHTTPPort, _ = strconv.Atoi(port)
	}
	if a.CARoot != "" {
		pool, err := loadRoots(resolve(dir, a.CARoot))
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_root: %w", err)
		}
		tmpl.TrustedRoots = pool
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, tmpl)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

func loadRoots(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// start obtains (or loads from storage) the certificates of the configured
// domains in the background and keeps them renewed until stop.
func (m *acmeManager) start(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	if len(m.cfg.Domains) == 0 {
		return
	}
	if err := m.magic.ManageAsync(ctx, m.cfg.Domains); err != nil {
		m.log.Error("acme: managing certificates", "domains", m.cfg.Domains, "error", err.Error())
	}
}

func (m *acmeManager) stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.cache.Stop()
}

// onEvent logs certificates obtained and renewed, and failures, in
// edgeguard's words.
func (m *acmeManager) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		m.log.Info("certificate obtained", "domain", fmt.Sprint(data["identifier"]), "renewal", data["renewal"] == true, "issuer", fmt.Sprint(data["issuer"]))
	case "cert_failed":
		m.log.Error("certificate not obtained", "domain", fmt.Sprint(data["identifier"]), "renewal", data["renewal"] == true, "error", fmt.Sprint(data["error"]))
	}
	return nil
}

// askApproval returns the on-demand decision: GET ask?domain=NAME, and a
// 2xx answer approves NAME.
func askApproval(ask string) func(context.Context, string) error {
	client := &http.Client{Timeout: askTimeout}
	return func(ctx context.Context, name string) error {
		u, err := url.Parse(ask)
		if err != nil {
			return fmt.Errorf("tls.acme.on_demand.ask %q: %w", ask, err)
		}
		q := u.Query()
		q.Set("domain", name)
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return fmt.Errorf("asking %s about %q: %w", ask, name, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("asking %s about %q: %w", ask, name, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("%s refused %q: %s", ask, name, resp.Status)
		}
		return nil
	}
}

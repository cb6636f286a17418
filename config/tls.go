package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"

	"github.com/edgeguard/edgeguard/filters"
)

// TLS is the edge listener's HTTPS: certificate files, several of them
// picked by the name the client asks for (SNI), and certificates obtained
// and renewed automatically through ACME. With none of these set the edge
// listener speaks plain HTTP.
type TLS struct {
	// Cert is a PEM certificate chain file. Relative paths resolve against
	// the config file's directory, here and in Certificates. The files are
	// read again on SIGHUP and when they change on disk (checked every
	// WatchInterval); a pair that does not load keeps the previous one in
	// service.
	Cert string `yaml:"cert" json:"cert"`
	// Key is the PEM private key file for Cert.
	Key string `yaml:"key" json:"key"`
	// Certificates are more certificate and key files; the one served is
	// the first (Cert before these) whose names cover the name the client
	// asks for, or the first one when none does.
	Certificates []CertFile `yaml:"certificates" json:"certificates"`
	// ACME obtains and renews certificates from an ACME CA (Let's Encrypt by
	// default) for the names no certificate file covers.
	ACME *ACME `yaml:"acme" json:"acme"`
	// HTTPListen is a plain-HTTP listener that answers ACME HTTP-01
	// challenges and redirects every other request to https. Default ":80"
	// when ACME uses the http-01 challenge, off otherwise; "off" turns it
	// off.
	HTTPListen string `yaml:"http_listen" json:"http_listen"`
	// WatchInterval is how often the certificate files are checked for
	// changes (size and modification time). Default 5s.
	WatchInterval filters.Duration `yaml:"watch_interval" json:"watch_interval"`
}

// CertFile is one certificate chain and its key.
type CertFile struct {
	// Cert is a PEM certificate chain file.
	Cert string `yaml:"cert" json:"cert"`
	// Key is the PEM private key file for Cert.
	Key string `yaml:"key" json:"key"`
}

// ACME challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ACME configures automatic certificates.
type ACME struct {
	// Email is the ACME account's contact, where the CA sends expiry and
	// policy notices. Optional, and recommended.
	Email string `yaml:"email" json:"email"`
	// Domains are the names certificates are obtained for at start and
	// renewed before they expire.
	Domains []string `yaml:"domains" json:"domains"`
	// OnDemand obtains a certificate during the first handshake that asks
	// for a name, once Ask has approved the name.
	OnDemand *OnDemand `yaml:"on_demand" json:"on_demand"`
	// CA is the ACME directory URL. Default Let's Encrypt's production
	// directory.
	CA string `yaml:"ca" json:"ca"`
	// CARoot is a PEM file of root certificates to trust for the CA's own
	// HTTPS, for a private CA (step-ca, pebble); the system roots otherwise.
	CARoot string `yaml:"ca_root" json:"ca_root"`
	// Storage is the directory where the account, certificates and keys are
	// kept, and locks taken so that nodes sharing it (a network file
	// system) obtain each certificate once. Default "acme" in the
	// directory $STATE_DIRECTORY names (systemd sets it for the unit in
	// dist/, the container image sets /var/lib/edgeguard), else beside the
	// config file. A relative path is relative to the config file's
	// directory.
	Storage string `yaml:"storage" json:"storage"`
	// Challenges are the challenge types offered: http-01 (needs
	// HTTPListen reachable on port 80) and tls-alpn-01 (needs Listen
	// reachable on port 443). Default both.
	Challenges []string `yaml:"challenges" json:"challenges"`
	// RenewInterval is how often certificates are checked for renewal; a
	// certificate is renewed when a third of its lifetime is left, or
	// earlier when the CA's renewal information (ARI) says so. Default 10m.
	RenewInterval filters.Duration `yaml:"renew_interval" json:"renew_interval"`
}

// OnDemand configures certificates obtained at handshake time.
type OnDemand struct {
	// Ask is an http(s) URL asked GET Ask?domain=NAME before a certificate
	// is obtained for NAME; a 2xx answer approves. Required: without it any
	// client could make edgeguard request certificates for any name that
	// points at it, and exhaust the CA's rate limits.
	Ask string `yaml:"ask" json:"ask"`
}

// Enabled reports whether the edge listener serves HTTPS.
func (t TLS) Enabled() bool { return t.Cert != "" || len(t.Certificates) > 0 || t.ACME != nil }

// Pairs returns every certificate file pair, Cert first.
func (t TLS) Pairs() []CertFile {
	var out []CertFile
	if t.Cert != "" || t.Key != "" {
		out = append(out, CertFile{Cert: t.Cert, Key: t.Key})
	}
	return append(out, t.Certificates...)
}

// UsesChallenge reports whether ACME is on and offers challenge c.
func (a *ACME) UsesChallenge(c string) bool {
	return a != nil && (len(a.Challenges) == 0 || slices.Contains(a.Challenges, c))
}

// Validate checks the block without touching the disk or the network.
func (t TLS) Validate() error {
	var errs []error
	if (t.Cert == "") != (t.Key == "") {
		errs = append(errs, filters.FieldErrorf("", "cert and key go together: set both or neither"))
	}
	for i, c := range t.Certificates {
		if c.Cert == "" || c.Key == "" {
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("certificates[%d]", i), "cert and key are both required"))
		}
	}
	if t.HTTPListen != "" && t.HTTPListen != "off" {
		if _, _, err := net.SplitHostPort(t.HTTPListen); err != nil {
			errs = append(errs, filters.FieldErrorf("http_listen", "%q is not host:port (or off)", t.HTTPListen))
		}
		if !t.Enabled() {
			errs = append(errs, filters.FieldErrorf("http_listen", "redirects to https, which needs a certificate or acme"))
		}
	}
	if t.WatchInterval < 0 {
		errs = append(errs, filters.FieldErrorf("watch_interval", "must not be negative"))
	}
	if t.ACME != nil {
		errs = append(errs, filters.PrefixFields("acme", t.ACME.validate(t.HTTPListen)))
	}
	return errors.Join(errs...)
}

func (a *ACME) validate(httpListen string) error {
	var errs []error
	field := func(f, format string, args ...any) { errs = append(errs, filters.FieldErrorf(f, format, args...)) }
	if len(a.Domains) == 0 && a.OnDemand == nil {
		field("", "set domains, or on_demand with an ask URL")
	}
	for i, d := range a.Domains {
		if d == "" || net.ParseIP(d) != nil || len(d) > 253 || d[0] == '.' || d[len(d)-1] == '.' {
			field(fmt.Sprintf("domains[%d]", i), "%q is not a domain name", d)
		}
	}
	if a.OnDemand != nil {
		if u, err := url.Parse(a.OnDemand.Ask); a.OnDemand.Ask == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			field("on_demand.ask", "%q: want an http(s) URL that approves each name (a 2xx answer to GET ?domain=NAME)", a.OnDemand.Ask)
		}
	}
	if a.CA != "" {
		if u, err := url.Parse(a.CA); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			field("ca", "%q is not an ACME directory URL", a.CA)
		}
	}
	if a.Challenges != nil && len(a.Challenges) == 0 {
		field("challenges", "offers no challenge: want http-01, tls-alpn-01 or both")
	}
	for i, c := range a.Challenges {
		if c != ChallengeHTTP01 && c != ChallengeTLSALPN01 {
			field(fmt.Sprintf("challenges[%d]", i), "%q: want http-01 or tls-alpn-01", c)
		}
	}
	if a.UsesChallenge(ChallengeHTTP01) && len(a.Challenges) == 1 && httpListen == "off" {
		field("challenges", "http-01 is the only challenge and tls.http_listen is off")
	}
	if a.RenewInterval < 0 {
		field("renew_interval", "must not be negative")
	}
	return errors.Join(errs...)
}

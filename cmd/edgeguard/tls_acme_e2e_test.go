package main

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"golang.org/x/crypto/ocsp"
)

// pebble is a real ACME CA (Let's Encrypt's test server) run inside the
// test, over HTTPS on loopback. Its validation authority resolves every
// name to 127.0.0.1 through a DNS server of the test's and checks the
// challenges on the ports edgeguard listens on.
type pebble struct {
	dir     string // ACME directory URL
	caRoot  string // PEM file of the directory's HTTPS certificate
	roots   *x509.CertPool
	logMu   sync.Mutex
	logs    bytes.Buffer
	issuing *ca.CAImpl
	ocsp    *ocspResponder // the responder the CA's certificates name
}

func (p *pebble) Write(b []byte) (int, error) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.logs.Write(b)
}

// startPebble runs a CA issuing certificates valid for validity (0: its
// default) and validating HTTP-01 on httpPort, TLS-ALPN-01 on tlsPort.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1") // validate at once, not after a random pause
	p := &pebble{}
	logger := log.New(p, "pebble ", log.Lmicroseconds)
	store := db.NewMemoryStore()
	// The responder is up before the CA exists because the CA writes its
	// URL into every certificate; it signs with the CA's key once asked.
	// Its answers are good for half the certificates' validity (an hour
	// with the default one): certmagic refuses one that outlives them.
	p.ocsp = &ocspResponder{issuer: func() (*x509.Certificate, crypto.Signer) {
		return p.issuing.GetIntermediateCert(0).Cert, p.issuing.GetIntermediateKey(0)
	}, valid: validity / 2}
	ocspSrv := httptest.NewServer(p.ocsp)
	t.Cleanup(ocspSrv.Close)
	// RSA keys: pebble hands out its issuing key only when it is RSA.
	p.issuing = ca.New(logger, store, ocspSrv.URL, "rsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: uint64(validity / time.Second)},
	})
	v := va.New(logger, httpPort, tlsPort, false, startDNS(t), store)
	w := wfe.New(logger, store, v, p.issuing, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)
	p.dir = srv.URL + wfe.DirectoryPath
	p.caRoot = filepath.Join(t.TempDir(), "pebble-https.pem")
	if err := os.WriteFile(p.caRoot, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.issuing.GetRootCert(0).Cert)
	t.Cleanup(func() {
		if t.Failed() {
			p.logMu.Lock()
			t.Logf("pebble log:\n%s", p.logs.String())
			p.logMu.Unlock()
		}
	})
	return p
}

// startDNS answers every A question with 127.0.0.1 and every other one
// with no records, over TCP (which pebble's resolver uses) and UDP on one
// port; it returns the address.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	answer := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, qq := range q.Question {
			if qq.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})
	for _, srv := range []*dns.Server{{Listener: ln, Handler: answer}, {PacketConn: pc, Handler: answer}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return ln.Addr().String()
}

// freePort returns a loopback TCP port that was free a moment ago: the CA
// must know the ports before edgeguard binds them.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// acmeServed handshakes as name, verifying the chain against the CA's
// root, and returns the leaf; it retries until deadline while the
// certificate is still being obtained.
func acmeServed(t *testing.T, addr, name string, roots *x509.CertPool, deadline time.Time) *x509.Certificate {
	t.Helper()
	return acmeHandshake(t, addr, name, roots, deadline).PeerCertificates[0]
}

// acmeHandshake is acmeServed's handshake, whole: the verified chain and
// the stapled OCSP response (crypto/tls always asks for one).
func acmeHandshake(t *testing.T, addr, name string, roots *x509.CertPool, deadline time.Time) tls.ConnectionState {
	t.Helper()
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
		if err == nil {
			cs := c.ConnectionState()
			c.Close()
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s verified by the CA's root: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// acmeConfig is an edgeguard config obtaining certificates from p.
func acmeConfig(p *pebble, edgePort, httpPort int, acme string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:%d"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: []
tls:
  http_listen: "127.0.0.1:%d"
  acme:
    email: ops@edge.test
    ca: %s
    ca_root: %s
    storage: acme-store
%s`, edgePort, httpPort, p.dir, p.caRoot, acme)
}

// TestE2EACMEIssuance obtains a certificate from the CA at start, with each
// challenge type alone, and serves it (the CA's root verifies the chain);
// the HTTP listener redirects to https. The account and the certificate
// are kept in the storage directory beside the config.
func TestE2EACMEIssuance(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			edgePort, httpPort := freePort(t), freePort(t)
			ca := startPebble(t, httpPort, edgePort, 0)
			dir := t.TempDir()
			p := startIn(t, dir, acmeConfig(ca, edgePort, httpPort, `    domains: [edge.test, www.edge.test]
    challenges: [`+challenge+`]
`), echoUpstream(t).URL)
			p.log.waitFor(t, 0, 60*time.Second, map[string]string{"msg": "certificate obtained", "domain": "edge.test", "renewal": "false"})
			deadline := time.Now().Add(30 * time.Second)
			for _, name := range []string{"edge.test", "www.edge.test"} {
				leaf := acmeServed(t, p.edge, name, ca.roots, deadline)
				if leaf.VerifyHostname(name) != nil {
					t.Errorf("%s: certificate for %v", name, leaf.DNSNames)
				}
			}
			resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).
				Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/a?b=c")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := "https://127.0.0.1:" + strconv.Itoa(edgePort) + "/a?b=c"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
				t.Errorf("plain HTTP: %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "acme-store", "certificates", "*", "edge.test", "edge.test.crt")); len(m) != 1 {
				t.Errorf("certificate not kept in the storage beside the config: %v", m)
			}
		})
	}
}

// TestE2EACMEOCSPStaple: a certificate from a CA that names an OCSP
// responder is served with the responder's "good" answer stapled, signed
// by the issuer and about this very certificate; clients need not ask the
// CA themselves.
func TestE2EACMEOCSPStaple(t *testing.T) {
	edgePort, httpPort := freePort(t), freePort(t)
	ca := startPebble(t, httpPort, edgePort, 0)
	p := startIn(t, t.TempDir(), acmeConfig(ca, edgePort, httpPort, `    domains: [edge.test]
`), echoUpstream(t).URL)
	p.log.waitFor(t, 0, 60*time.Second, map[string]string{"msg": "certificate obtained", "domain": "edge.test", "renewal": "false"})
	cs := acmeHandshake(t, p.edge, "edge.test", ca.roots, time.Now().Add(30*time.Second))
	leaf := cs.PeerCertificates[0]
	if len(leaf.OCSPServer) != 1 {
		t.Fatalf("the CA's certificate names OCSP servers %v, want its responder", leaf.OCSPServer)
	}
	if len(cs.OCSPResponse) == 0 {
		t.Fatalf("no OCSP response stapled (the responder was asked %d times)", ca.ocsp.requests())
	}
	resp, err := ocsp.ParseResponseForCert(cs.OCSPResponse, leaf, cs.VerifiedChains[0][1])
	if err != nil {
		t.Fatalf("stapled OCSP response: %v", err)
	}
	if resp.Status != ocsp.Good {
		t.Errorf("stapled OCSP status %d, want good (%d)", resp.Status, ocsp.Good)
	}
	if resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("stapled OCSP response is about serial %s, the certificate's is %s", resp.SerialNumber, leaf.SerialNumber)
	}
}

// TestE2EACMERenewal: with certificates valid for 30 s, checked every
// second, a new certificate (another serial) is obtained and served before
// the first expires.
func TestE2EACMERenewal(t *testing.T) {
	edgePort, httpPort := freePort(t), freePort(t)
	ca := startPebble(t, httpPort, edgePort, 30*time.Second)
	p := startIn(t, t.TempDir(), acmeConfig(ca, edgePort, httpPort, `    domains: [edge.test]
    renew_interval: 1s
`), echoUpstream(t).URL)
	_, next := p.log.waitFor(t, 0, 60*time.Second, map[string]string{"msg": "certificate obtained", "domain": "edge.test", "renewal": "false"})
	first := acmeServed(t, p.edge, "edge.test", ca.roots, time.Now().Add(30*time.Second))
	p.log.waitFor(t, next, 60*time.Second, map[string]string{"msg": "certificate obtained", "domain": "edge.test", "renewal": "true"})
	deadline := time.Now().Add(20 * time.Second)
	for {
		leaf := acmeServed(t, p.edge, "edge.test", ca.roots, deadline)
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			// Certificates carry whole seconds: a renewal issued within
			// the first's second expires with it.
			if leaf.NotAfter.Before(first.NotAfter) {
				t.Errorf("renewed certificate expires %s, before the first's %s", leaf.NotAfter, first.NotAfter)
			}
			if time.Now().After(first.NotAfter) {
				t.Errorf("renewed only after the first certificate expired")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %s after the renewal", first.SerialNumber)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestE2EACMEOnDemand obtains a certificate during the first handshake for
// a name the ask URL approves, and refuses the handshake for one it does
// not.
func TestE2EACMEOnDemand(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	ask := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("domain")
		mu.Lock()
		asked = append(asked, d)
		mu.Unlock()
		if !strings.HasSuffix(d, ".customer.test") {
			http.Error(w, "not ours", http.StatusForbidden)
		}
	}))
	t.Cleanup(ask.Close)
	edgePort, httpPort := freePort(t), freePort(t)
	ca := startPebble(t, httpPort, edgePort, 0)
	p := startIn(t, t.TempDir(), acmeConfig(ca, edgePort, httpPort, `    on_demand: {ask: "`+ask.URL+`/check"}
`), echoUpstream(t).URL)

	leaf := acmeServed(t, p.edge, "shop.customer.test", ca.roots, time.Now().Add(60*time.Second))
	if leaf.VerifyHostname("shop.customer.test") != nil {
		t.Errorf("certificate for %v", leaf.DNSNames)
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", p.edge, &tls.Config{ServerName: "evil.test", RootCAs: ca.roots})
	if err == nil {
		c.Close()
		t.Fatal("handshake for a name the ask URL refused succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(asked, ","), "shop.customer.test") || !strings.Contains(strings.Join(asked, ","), "evil.test") {
		t.Errorf("ask URL was asked about %v", asked)
	}
}

// TestE2EACMEWithFiles: certificate files and ACME side by side. A name a
// file covers gets the file's certificate, a managed name the CA's, and
// any other name the first file's rather than a failed handshake.
func TestE2EACMEWithFiles(t *testing.T) {
	edgePort, httpPort := freePort(t), freePort(t)
	ca := startPebble(t, httpPort, edgePort, 0)
	dir := t.TempDir()
	writeCert(t, dir, "static", 7, "static.test")
	p := startIn(t, dir, acmeConfig(ca, edgePort, httpPort, `    domains: [edge.test]
  cert: static.crt
  key: static.key
`), echoUpstream(t).URL)
	p.log.waitFor(t, 0, 60*time.Second, map[string]string{"msg": "certificate obtained", "domain": "edge.test"})
	leaf := acmeServed(t, p.edge, "edge.test", ca.roots, time.Now().Add(30*time.Second))
	if leaf.VerifyHostname("edge.test") != nil {
		t.Errorf("edge.test: certificate for %v", leaf.DNSNames)
	}
	for _, name := range []string{"static.test", "other.test"} {
		if got := served(t, p.edge, name); got != 7 {
			t.Errorf("%s: serial %d, want the file's 7", name, got)
		}
	}
}

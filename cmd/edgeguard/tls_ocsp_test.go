package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/config"
	"golang.org/x/crypto/ocsp"
)

// writeCAIssued writes base.crt (the leaf, then the CA) and base.key for
// names, issued by a new CA whose responder is served at the URL the leaf
// names; it returns the responder.
func writeCAIssued(t *testing.T, dir, base string, serial int64, names ...string) *ocspResponder {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	r := &ocspResponder{issuer: func() (*x509.Certificate, crypto.Signer) { return ca, caKey }}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		OCSPServer: []string{srv.URL},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	writeFile(t, filepath.Join(dir, base+".crt"), chain)
	writeFile(t, filepath.Join(dir, base+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	return r
}

// TestCertFilesOCSPStaple: a certificate file whose leaf names an OCSP
// responder and which carries its issuer is served with the responder's
// good answer stapled; the staple is renewed halfway through its validity
// and not before; a responder that fails leaves a valid staple in place,
// is asked again a minute later, not on every poll, and an expired staple
// is dropped. A self-signed file asks no one and staples nothing.
func TestCertFilesOCSPStaple(t *testing.T) {
	dir := t.TempDir()
	r := writeCAIssued(t, dir, "edge", 7, "edge.test")
	writeCert(t, dir, "self", 8, "self.test")
	t0 := time.Now().Truncate(time.Second) // OCSP times have whole seconds
	r.set(t0, false)
	var logs bytes.Buffer
	c, err := newCertFiles(config.TLS{Certificates: []config.CertFile{{Cert: "edge.crt", Key: "edge.key"}, {Cert: "self.crt", Key: "self.key"}}},
		dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// stapled is the ThisUpdate of the staple served for edge.test, zero
	// for none; the self-signed certificate must never have one.
	stapled := func() time.Time {
		t.Helper()
		certs := *c.certs.Load()
		if len(certs[1].OCSPStaple) > 0 {
			t.Errorf("self-signed certificate served with a staple")
		}
		if len(certs[0].OCSPStaple) == 0 {
			return time.Time{}
		}
		ca, _ := r.issuer()
		resp, err := ocsp.ParseResponseForCert(certs[0].OCSPStaple, certs[0].Leaf, ca)
		if err != nil {
			t.Fatalf("staple: %v", err)
		}
		if resp.Status != ocsp.Good || resp.SerialNumber.Int64() != 7 {
			t.Fatalf("staple says status %d about serial %s, want good about 7", resp.Status, resp.SerialNumber)
		}
		return resp.ThisUpdate
	}
	for _, step := range []struct {
		at     time.Duration // poll at t0+at
		down   bool          // the responder fails
		asked  int           // requests so far
		staple time.Duration // the staple served is from t0+staple; -1: none
	}{
		{0, false, 1, 0},                                             // loaded: stapled at once
		{10 * time.Minute, false, 1, 0},                              // not due
		{31 * time.Minute, false, 2, 31 * time.Minute},               // due (half of 1h): renewed
		{62 * time.Minute, true, 3, 31 * time.Minute},                // due, responder down: the valid staple stays
		{62*time.Minute + 30*time.Second, true, 3, 31 * time.Minute}, // a failure is retried after a minute
		{92 * time.Minute, true, 4, -1},                              // retried, still down, staple expired: dropped
		{93 * time.Minute, false, 5, 93 * time.Minute},               // back: stapled again
	} {
		if step.at > 0 {
			r.set(t0.Add(step.at), step.down)
			c.poll(t0.Add(step.at))
		}
		asked := r.set(t0.Add(step.at), step.down)
		got := stapled()
		want := time.Time{}
		if step.staple >= 0 {
			want = t0.Add(step.staple)
		}
		if asked != step.asked || !got.Equal(want) {
			t.Fatalf("at t0+%s: responder asked %d times, staple from %s; want %d, %s\n%s", step.at, asked, got, step.asked, want, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "OCSP stapling failed") {
		t.Errorf("the responder's failure is not logged:\n%s", logs.String())
	}
}

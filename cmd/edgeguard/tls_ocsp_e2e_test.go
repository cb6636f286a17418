package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspResponder is a CA's OCSP responder, as Let's Encrypt's was: it
// answers "good" about any serial, signed by the issuing certificate
// itself (RFC 6960 4.2.2.2). The test may set its clock (zero: the real
// one) and make it fail.
type ocspResponder struct {
	// issuer is the certificate and key that sign: a function, because
	// pebble makes its intermediate only after it knows the responder's URL.
	issuer func() (*x509.Certificate, crypto.Signer)
	// valid is how long an answer is good for (an hour if zero); it must
	// not outlast the certificates asked about, or certmagic refuses it.
	valid time.Duration

	mu    sync.Mutex
	now   time.Time
	down  bool
	asked int // requests, answered or not
}

func (r *ocspResponder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	if r.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now, valid := r.now, r.valid
	if now.IsZero() {
		now = time.Now()
	}
	if valid == 0 {
		valid = time.Hour
	}
	ca, key := r.issuer()
	resp, err := ocsp.CreateResponse(ca, ca, ocsp.Response{Status: ocsp.Good, SerialNumber: q.SerialNumber,
		ThisUpdate: now, NextUpdate: now.Add(valid)}, key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(resp)
}

// set sets the responder's clock and health and returns how often it has
// been asked so far.
func (r *ocspResponder) set(now time.Time, down bool) (asked int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now, r.down = now, down
	return r.asked
}

// requests is how often the responder has been asked.
func (r *ocspResponder) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asked
}

// TestE2ETLSFileOCSPStaple: a certificate file that carries its issuer and
// names an OCSP responder is served, through the binary, with the
// responder's good answer about it stapled.
func TestE2ETLSFileOCSPStaple(t *testing.T) {
	dir := t.TempDir()
	r := writeCAIssued(t, dir, "edge", 5, "edge.test")
	p := startIn(t, dir, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: []
tls: {cert: edge.crt, key: edge.key}
`, echoUpstream(t).URL)
	ca, _ := r.issuer()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", p.edge, &tls.Config{ServerName: "edge.test", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	cs := c.ConnectionState()
	c.Close()
	if len(cs.OCSPResponse) == 0 {
		t.Fatalf("no OCSP response stapled (the responder was asked %d times)", r.requests())
	}
	resp, err := ocsp.ParseResponseForCert(cs.OCSPResponse, cs.PeerCertificates[0], ca)
	if err != nil {
		t.Fatalf("stapled OCSP response: %v", err)
	}
	if resp.Status != ocsp.Good || resp.SerialNumber.Int64() != 5 {
		t.Errorf("stapled OCSP response says status %d about serial %s, want good (%d) about 5", resp.Status, resp.SerialNumber, ocsp.Good)
	}
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate with serial and names, and its
// key, to dir/base.crt and dir/base.key.
func writeCert(t *testing.T, dir, base string, serial int64, names ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: names, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, base+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, base+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

// writeFile replaces path atomically, as deployment tools do, so a reader
// never sees half a file.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// served handshakes with addr asking for name and returns the serial of
// the certificate the server presents.
func served(t *testing.T, addr, name string) int64 {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake with %s as %q: %v", addr, name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// startIn runs `edgeguard run` on cfg written to dir/edgeguard.yaml, so
// that the test can put files beside the config first.
func startIn(t *testing.T, dir, cfg, upstream string) *proc {
	t.Helper()
	p := newProc(dir)
	p.writeConfig(t, cfg, upstream)
	// Not the config's directory: relative paths must resolve against the
	// config, not where the process runs.
	p.launch(t, t.TempDir(), "run", "-config", p.config)
	return p
}

func (p *proc) sighup(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// TestE2ETLSReloadOnSIGHUP replaces the certificate files, sends SIGHUP and
// sees the new certificate served; a pair that does not load is refused and
// the previous certificate keeps serving. The watcher is slowed to an hour
// so that only the signal can explain the change.
func TestE2ETLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "edge", 1, "edge.test")
	p := startIn(t, dir, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: []
tls: {cert: edge.crt, key: edge.key, watch_interval: 1h}
`, echoUpstream(t).URL)
	if got := served(t, p.edge, "edge.test"); got != 1 {
		t.Fatalf("serial %d at start, want 1", got)
	}

	writeCert(t, dir, "edge", 2, "edge.test")
	p.sighup(t)
	_, next := p.log.waitFor(t, 0, 10*time.Second, map[string]string{"msg": "reloaded"})
	if got := served(t, p.edge, "edge.test"); got != 2 {
		t.Fatalf("serial %d after SIGHUP, want the new certificate's 2", got)
	}

	// A key that is not the certificate's: the reload is refused whole.
	writeCert(t, dir, "other", 3, "edge.test")
	if err := os.Rename(filepath.Join(dir, "other.crt"), filepath.Join(dir, "edge.crt")); err != nil {
		t.Fatal(err)
	}
	p.sighup(t)
	m, _ := p.log.waitFor(t, next, 10*time.Second, map[string]string{"msg": "reload refused; the previous config keeps serving"})
	if !strings.Contains(fmt.Sprint(m["error"]), "edge.crt") {
		t.Errorf("refusal does not name the file: %v", m["error"])
	}
	if got := served(t, p.edge, "edge.test"); got != 2 {
		t.Fatalf("serial %d after a refused reload, want 2 still", got)
	}
}

// TestE2ETLSReloadOnFileChange replaces the files and, without a signal,
// sees the new certificate served once the watcher has looked.
func TestE2ETLSReloadOnFileChange(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "edge", 1, "edge.test")
	p := startIn(t, dir, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: []
tls: {cert: edge.crt, key: edge.key, watch_interval: 50ms}
`, echoUpstream(t).URL)
	if got := served(t, p.edge, "edge.test"); got != 1 {
		t.Fatalf("serial %d at start, want 1", got)
	}
	writeCert(t, dir, "edge", 2, "edge.test")
	p.log.waitFor(t, 0, 10*time.Second, map[string]string{"msg": "certificates reloaded", "trigger": "file change"})
	if got := served(t, p.edge, "edge.test"); got != 2 {
		t.Fatalf("serial %d after the files changed, want 2", got)
	}
}

// TestE2ETLSSNI serves several certificates, each for the names it covers
// (a wildcard included), and the first one to a client that asks for no
// name or an unknown one. Paths are relative to the config's directory.
func TestE2ETLSSNI(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeCert(t, filepath.Join(dir, "certs"), "a", 10, "a.test")
	writeCert(t, filepath.Join(dir, "certs"), "b", 20, "b.test", "www.b.test")
	writeCert(t, filepath.Join(dir, "certs"), "wild", 30, "*.c.test")
	p := startIn(t, dir, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: []
tls:
  cert: certs/a.crt
  key: certs/a.key
  certificates:
    - {cert: certs/b.crt, key: certs/b.key}
    - {cert: certs/wild.crt, key: certs/wild.key}
`, echoUpstream(t).URL)
	tests := []struct {
		name string
		want int64
	}{
		{"a.test", 10},
		{"b.test", 20},
		{"www.b.test", 20},
		{"x.c.test", 30},
		{"unknown.test", 10},
		{"", 10},
	}
	for _, tt := range tests {
		if got := served(t, p.edge, tt.name); got != tt.want {
			t.Errorf("SNI %q: serial %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestE2EValidateTLSRelative: validate reads the certificate files where
// run does, relative to the config, and reports one that is missing.
func TestE2EValidateTLSRelative(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	writeCert(t, dir, "edge", 1, "edge.test")
	cfg := filepath.Join(dir, "edgeguard.yaml")
	body := "upstream: http://127.0.0.1:9\nstages: []\ntls: {cert: edge.crt, key: edge.key}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "validate", "-config", cfg)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("validate from another directory: %v\n%s", err, out)
	}
	if err := os.Remove(filepath.Join(dir, "edge.key")); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, "validate", "-config", cfg)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Join(dir, "edge.key")) {
		t.Fatalf("validate with the key missing: %v\n%s", err, out)
	}
}

package main

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/config"
)

// TestCertFilesHalfReplaced: a deployment replaces the certificate, then
// the key. The watcher that looks in between refuses the mismatched pair
// once (one log line, however often it polls), keeps the old certificate,
// and takes the new one when the key lands.
func TestCertFilesHalfReplaced(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "edge", 1, "edge.test")
	writeCert(t, dir, "next", 2, "edge.test")
	var logs bytes.Buffer
	c, err := newCertFiles(config.TLS{Cert: "edge.crt", Key: "edge.key"}, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 {
		hello := &tls.ClientHelloInfo{ServerName: "edge.test", SupportedVersions: []uint16{tls.VersionTLS13},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}}
		return c.match(hello).Leaf.SerialNumber.Int64()
	}
	move := func(from, to string) {
		t.Helper()
		if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}

	move("next.crt", "edge.crt")
	c.poll(time.Now())
	c.poll(time.Now())
	if got := serial(); got != 1 {
		t.Fatalf("serial %d with a mismatched pair on disk, want the old 1", got)
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Fatalf("%d refusals logged for one state of the files, want 1:\n%s", n, logs.String())
	}
	move("next.key", "edge.key")
	c.poll(time.Now())
	if got := serial(); got != 2 {
		t.Fatalf("serial %d once the key landed, want 2\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "certificates reloaded") {
		t.Errorf("reload not logged:\n%s", logs.String())
	}
}

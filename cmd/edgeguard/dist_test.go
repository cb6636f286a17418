package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
)

// dockerHealthURL is the URL the Dockerfile's HEALTHCHECK asks for.
func dockerHealthURL(t *testing.T) string {
	t.Helper()
	df, err := os.ReadFile("../../dist/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)HEALTHCHECK[^\n]*\\\n\s*CMD \["/edgeguard", "health", "([^"]+)"\]`).FindSubmatch(df)
	if m == nil {
		t.Fatal("dist/Dockerfile has no HEALTHCHECK running /edgeguard health URL")
	}
	return string(m[1])
}

// TestDockerfileHealthcheckHitsHealthz: the image's HEALTHCHECK asks the
// admin listener at its default address for a route the admin mux serves,
// and `edgeguard health` passes on it — the check a container runtime runs.
func TestDockerfileHealthcheckHitsHealthz(t *testing.T) {
	u, err := url.Parse(dockerHealthURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("one-line.yaml", []byte("upstream: http://127.0.0.1:9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != cfg.Admin.Listen {
		t.Errorf("HEALTHCHECK asks %s, the default admin listener is %s", u.Host, cfg.Admin.Listen)
	}
	if u.String() != defaultHealthURL {
		t.Errorf("HEALTHCHECK URL %s, health's default %s: keep them one", u, defaultHealthURL)
	}
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g.AdminHandler())
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"health", srv.URL + u.Path}, &out, &errOut); code != 0 {
		t.Fatalf("health on the admin mux's %s: exit %d, %s", u.Path, code, errOut.String())
	}
	if code := run([]string{"health", srv.URL + "/no-such-route"}, io.Discard, &errOut); code != 1 {
		t.Errorf("health on a missing route: exit %d, want 1", code)
	}
}

// TestHealthSendsToken: with admin.token set, health passes only with it.
func TestHealthSendsToken(t *testing.T) {
	cfg, err := config.Parse("token.yaml", []byte("upstream: http://127.0.0.1:9\nadmin: {token: s3cret}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g.AdminHandler())
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"health", srv.URL + "/healthz"}, 1},
		{[]string{"health", "-token", "wrong", srv.URL + "/healthz"}, 1},
		{[]string{"health", "-token", "s3cret", srv.URL + "/healthz"}, 0},
	} {
		if code := run(tc.args, io.Discard, io.Discard); code != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.want)
		}
	}
}

// TestDockerfileShape: multi-stage, static, non-root, and the config path
// it runs is the one it documents.
func TestDockerfileShape(t *testing.T) {
	df, err := os.ReadFile("../../dist/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(df)
	for _, want := range []string{"AS build", "CGO_ENABLED=0", "FROM scratch", "USER 65532:65532", `CMD ["run", "/etc/edgeguard/edgeguard.yaml"]`,
		// what `edgeguard version` prints (buildinfo.go's -X variables)
		"ARG VERSION", "ARG COMMIT", "-X github.com/edgeguard/edgeguard.buildVersion=${VERSION}", "-X github.com/edgeguard/edgeguard.buildCommit=${COMMIT}"} {
		if !strings.Contains(s, want) {
			t.Errorf("dist/Dockerfile lacks %q", want)
		}
	}
	if strings.Count(s, "\nFROM ") < 2 {
		t.Error("dist/Dockerfile is not multi-stage")
	}
}

// TestSystemdUnit: the unit reloads with SIGHUP, runs the config it
// validates, and systemd itself finds nothing wrong with it.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../dist/edgeguard.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecReload=/bin/kill -HUP $MAINPID", "ExecStart=/usr/local/bin/edgeguard run /etc/edgeguard/edgeguard.yaml",
		"ExecStartPre=/usr/local/bin/edgeguard validate /etc/edgeguard/edgeguard.yaml", "NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("dist/edgeguard.service lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	// verify wants the binary to exist: point the unit at a stand-in.
	dir := t.TempDir()
	stand := filepath.Join(dir, "edgeguard")
	if err := os.WriteFile(stand, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "edgeguard.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/edgeguard"), []byte(stand)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDistStateDirectory: under the shipped unit and in the image, state
// the config does not place lands in a directory the process may write:
// the unit declares StateDirectory= (systemd sets $STATE_DIRECTORY to
// /var/lib/edgeguard), the image sets that variable to a volume it creates
// for its user, and the config loader reads that variable.
func TestDistStateDirectory(t *testing.T) {
	const stateDir = "/var/lib/edgeguard"
	unit, err := os.ReadFile("../../dist/edgeguard.service")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^StateDirectory=edgeguard$`).Match(unit) {
		t.Errorf("dist/edgeguard.service lacks StateDirectory=edgeguard (%s)", stateDir)
	}
	df, err := os.ReadFile("../../dist/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nENV " + config.StateDirectoryEnv + "=" + stateDir + "\n",
		"\nVOLUME " + stateDir + "\n",
		"\nCOPY --from=build --chown=65532:65532 /out" + stateDir + " " + stateDir + "\n",
	} {
		if !strings.Contains(string(df), want) {
			t.Errorf("dist/Dockerfile lacks %q", strings.TrimSpace(want))
		}
	}
	t.Setenv(config.StateDirectoryEnv, stateDir)
	cfg, err := config.Parse("edgeguard.yaml", []byte("upstream: http://127.0.0.1:9\ntls: {acme: {domains: [edge.test]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.ACME.Storage != stateDir+"/acme" || cfg.Reputation.CacheDir != stateDir+"/lists-cache" {
		t.Errorf("with %s=%s: acme storage %q, list cache %q, want both under it", config.StateDirectoryEnv, stateDir, cfg.TLS.ACME.Storage, cfg.Reputation.CacheDir)
	}
}

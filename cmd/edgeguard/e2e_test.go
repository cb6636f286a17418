package main

// End-to-end tests: the real binary, built once, run as a subprocess with a
// real config file, real listeners on 127.0.0.1 and a real upstream.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// e2eVersion and e2eCommit are what binary stamps the test binary with.
const (
	e2eVersion = "v0.0.0-e2e"
	e2eCommit  = "e2e0123456789abcdef0123456789abcdef0123"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/edgeguard once per test run, with the race detector
// when the tests run with it, so the serve, reload and listener code that
// only the binary runs is race-checked too (start fails a test whose
// process reported a race).
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgeguard-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "edgeguard")
		// Stamped as the Makefile and the Dockerfile stamp a release, so
		// TestE2ECommandLine sees `version` print what the build passed.
		args := []string{"build", "-o", binPath, "-ldflags", "-X github.com/edgeguard/edgeguard.buildVersion=" + e2eVersion + " -X github.com/edgeguard/edgeguard.buildCommit=" + e2eCommit}
		if raceDetector {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// logBuffer collects a process's stderr and lets a test wait for a line.
type logBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []string
	cond  *sync.Cond
}

func newLogBuffer() *logBuffer {
	l := &logBuffer{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *logBuffer) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, sc.Text())
		l.buf.WriteString(sc.Text() + "\n")
		l.cond.Broadcast()
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.lines = append(l.lines, "\x00eof")
	l.cond.Broadcast()
	l.mu.Unlock()
}

// eventWait is the least a wait for a log line lasts, whatever its caller
// asks: a log line is an event, which a loaded machine under -race delays
// (a reload that builds the WAF took over 20s loading CRS) but cannot make
// wrong, so a shorter wait only turns slowness into a failure. No test
// expects a line not to come.
const eventWait = 2 * time.Minute

// waitFor returns the first log line (as JSON fields) whose fields include
// all of want, from line index from on; it fails the test after timeout
// (at least eventWait).
func (l *logBuffer) waitFor(t *testing.T, from int, timeout time.Duration, want map[string]string) (map[string]any, int) {
	t.Helper()
	timeout = max(timeout, eventWait)
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() { l.mu.Lock(); l.cond.Broadcast(); l.mu.Unlock() })
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; ; i++ {
		for i >= len(l.lines) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line with %v within %v; log:\n%s", want, timeout, l.buf.String())
			}
			l.cond.Wait()
		}
		if l.lines[i] == "\x00eof" {
			t.Fatalf("process exited before logging %v; log:\n%s", want, l.buf.String())
		}
		var m map[string]any
		if json.Unmarshal([]byte(l.lines[i]), &m) != nil {
			continue
		}
		ok := true
		for k, v := range want {
			if fmt.Sprint(m[k]) != v {
				ok = false
				break
			}
		}
		if ok {
			return m, i + 1
		}
	}
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proc is a running edgeguard.
type proc struct {
	cmd    *exec.Cmd
	dir    string
	config string
	edge   string // host:port
	admin  string
	log    *logBuffer
	done   chan error
}

// start writes cfg (with {{upstream}} replaced) to a temp dir and runs
// `edgeguard run` on it, waiting until it serves.
func start(t *testing.T, cfg string, upstream string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := newProc(dir)
	p.writeConfig(t, cfg, upstream)
	p.launch(t, dir, "run", "-config", p.config)
	return p
}

// newProc is a proc whose config is dir/edgeguard.yaml, not yet started.
func newProc(dir string) *proc {
	return &proc{dir: dir, config: filepath.Join(dir, "edgeguard.yaml"), log: newLogBuffer(), done: make(chan error, 1)}
}

// launch runs the binary with args in workDir, stops it when the test
// ends (failing a test whose process reported a data race), waits until
// it serves and returns the fields of its "serving" log line.
func (p *proc) launch(t *testing.T, workDir string, args ...string) map[string]any {
	t.Helper()
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Dir = workDir
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.log.consume(stderr)
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
			t.Errorf("the edgeguard process reported a data race")
		}
		if t.Failed() {
			t.Logf("edgeguard log:\n%s", p.log.String())
		}
	})
	m, _ := p.log.waitFor(t, 0, 60*time.Second, map[string]string{"msg": "serving"})
	p.edge = fmt.Sprint(m["listen"])
	p.admin = fmt.Sprint(m["admin"])
	return m
}

func (p *proc) writeConfig(t *testing.T, cfg, upstream string) {
	t.Helper()
	cfg = strings.ReplaceAll(cfg, "{{upstream}}", upstream)
	if err := os.WriteFile(p.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// echoUpstream answers with the headers that reached it, as JSON.
type seen struct {
	Method string            `json:"method"`
	Header map[string]string `json:"header"`
	Body   string            `json:"body"`
}

func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := map[string]string{}
		for k := range r.Header {
			h[k] = strings.Join(r.Header.Values(k), ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{Method: r.Method, Header: h, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawRequest writes prefix (a PROXY header or nothing) and a GET on one
// connection and returns the response, or the error the connection ended with.
func rawRequest(t *testing.T, addr string, prefix []byte, headers string) (*http.Response, seen, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: example.test\r\n" + headers + "Connection: close\r\n\r\n"
	if _, err := c.Write(append(append([]byte{}, prefix...), req...)); err != nil {
		return nil, seen{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, seen{}, err
	}
	defer resp.Body.Close()
	var s seen
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &s)
	return resp, s, nil
}

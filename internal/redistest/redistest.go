// Package redistest starts real redis-server processes for tests, each on a
// free loopback port with no persistence, and stops them when the test ends.
// Tests that need Redis behaviour use it instead of any mock: Lua, TIME,
// pub/sub and cluster behaviour are Redis's own.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	Addr string // 127.0.0.1:PORT
	Port int
	dir  string
	args []string
	cmd  *exec.Cmd
	// exited is closed when cmd has been waited for.
	exited <-chan struct{}
	t      testing.TB
}

// Start starts a redis-server for t and registers its stop with t.Cleanup.
// Extra arguments are passed on the command line (e.g. "--cluster-enabled",
// "yes"). It skips the test when redis-server is not installed and CI is not
// set; under CI (CI=true) a missing redis-server fails the test, since .ci/run
// installs it.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server not found (CI must install it): %v", err)
		}
		t.Skip("redis-server not installed")
	}
	s := &Server{dir: t.TempDir(), t: t}
	// FreePort's port was free a moment ago; another process may take it
	// before redis-server binds it. Then redis-server exits, and the next
	// port is tried.
	for attempt := 1; ; attempt++ {
		s.Port = FreePort(t)
		s.Addr = fmt.Sprintf("127.0.0.1:%d", s.Port)
		s.args = append([]string{
			"--port", fmt.Sprint(s.Port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", s.dir,
			"--protected-mode", "no", "--loglevel", "warning",
		}, extra...)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("redistest: %v", err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

// start runs redis-server with s.args and waits until the process it
// started, not some other server on the port, answers. It fails the test on
// what cannot be retried, and returns an error when redis-server exited
// (typically: the port was taken), which Start retries on another port.
func (s *Server) start() error {
	s.t.Helper()
	cmd := exec.Command("redis-server", s.args...)
	cmd.Dir = s.dir
	logPath := filepath.Join(s.dir, fmt.Sprintf("redis-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(logPath)
	if err != nil {
		s.t.Fatalf("redistest: create log: %v", err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.After(10 * time.Second)
	for {
		if pid, ok := s.pid(); ok && pid == cmd.Process.Pid {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr, strings.TrimSpace(string(out)))
		case <-deadline:
			s.t.Fatalf("redistest: redis-server on %s did not answer within 10s", s.Addr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// pid asks the server on s.Addr for its process id (INFO server), so that
// start can tell its own redis-server from another one on the same port.
func (s *Server) pid() (int, bool) {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return 0, false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, false
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, false
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, false
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
}

// Stop kills the server (SIGKILL: a crash, not a shutdown) and waits for it.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same port after Stop, with an
// empty dataset.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart on the same port: %v", err)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

package redistest

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// A port taken between FreePort and redis-server's bind makes start report
// the exit (so Start tries another port) instead of talking to whatever
// holds the port.
func TestStartReportsATakenPort(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	s := &Server{dir: t.TempDir(), t: t, Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	s.args = []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}
	err = s.start()
	if err == nil {
		s.Stop()
		t.Fatal("start succeeded on a taken port")
	}
	if !strings.Contains(err.Error(), "exited") {
		t.Fatalf("start on a taken port: %v", err)
	}

	// And Start itself ends with a server of its own.
	srv := Start(t)
	if pid, ok := srv.pid(); !ok || pid != srv.cmd.Process.Pid {
		t.Fatalf("Start's server answers as pid %d (%v), want %d", pid, ok, srv.cmd.Process.Pid)
	}
}

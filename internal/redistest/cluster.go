package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Cluster is a running Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
	// Addrs are the nodes' addresses, to seed a cluster client.
	Addrs []string
}

// StartCluster starts n redis-server processes (n ≥ 3) in cluster mode on
// free loopback ports, joins them with redis-cli --cluster create as n
// masters sharing the 16384 slots, and waits until every node reports
// cluster_state:ok. The nodes stop when the test ends. It skips like Start
// when redis-server or redis-cli is missing outside CI.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a Redis Cluster needs at least 3 masters, asked for %d", n)
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-cli not found (CI must install it): %v", err)
		}
		t.Skip("redis-cli not installed")
	}
	c := &Cluster{}
	for range n {
		s := Start(t, "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
			// The bus port defaults to port+10000, which may be taken or
			// beyond 65535; pick a free one.
			"--cluster-port", fmt.Sprint(FreePort(t)))
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command("redis-cli", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create %v: %v\n%s", c.Addrs, err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Nodes {
		for !clusterOK(s.Addr) {
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s did not reach cluster_state:ok within 20s", s.Addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return c
}

// clusterOK asks one node for CLUSTER INFO over the inline protocol.
func clusterOK(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("CLUSTER INFO\r\n")); err != nil {
		return false
	}
	rd := bufio.NewReader(conn)
	head, err := rd.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return false
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return false
		}
		if strings.HasPrefix(line, "cluster_state:") {
			return strings.TrimSpace(line) == "cluster_state:ok"
		}
	}
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, s := range c.Nodes {
		s.Stop()
	}
}

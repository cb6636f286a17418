package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// runShTools are the programs run.sh needs, with the coreutils it calls and
// what go build calls in turn (git for the VCS stamp; the C toolchain for
// cgo, without which go would rebuild the standard library with cgo off).
// Nothing that names a target's package: nginx and redis-server must look
// missing. dpkg-query is left out too, so the report says which CRS it
// could not name.
var runShTools = []string{
	"go", "wrk", "taskset",
	"bash", "env", "cat", "chmod", "cp", "cut", "date", "dirname", "getconf", "grep",
	"head", "mkdir", "mktemp", "nproc", "rm", "sed", "sleep", "stat", "tail", "tee",
	"tr", "uname",
	"git", "gcc", "cc", "as", "ld",
}

// TestRunShSkipsMissingTargets runs bench/run.sh the way a fresh machine
// with only go, wrk and taskset would: PATH is a directory of links to
// those (and the coreutils the script uses), so nginx and redis-server are
// missing. The run must succeed, print the machine and CRS lines and a
// bare row, measure edgeguard's cheap stages on the GET and its flood (a
// flood whose probe does not end on the volumetric 429 is "broken"), and
// skip the nginx targets with the reason.
func TestRunShSkipsMissingTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs whole processes under wrk for about half a minute")
	}
	bin := t.TempDir()
	for _, tool := range runShTools {
		p, err := exec.LookPath(tool)
		if err != nil {
			switch tool {
			case "wrk", "taskset":
				t.Skipf("run.sh needs %s: %v", tool, err)
			case "gcc", "cc", "as", "ld":
				continue // no C toolchain here: go builds without cgo anyway
			}
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if n := runtime.NumCPU(); n < 2 {
		t.Skipf("run.sh needs two CPUs, this process may use %d", n)
	}
	stdout, stderr := runSh(t, bin, "-d", "1s", "-n", "1", "-c", "8",
		"-targets", "bare,nginx,nginx-modsec-crs3,edgeguard-cheap", "-workloads", "get,flood")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^- machine: .+, \d+ CPUs, Linux `),
		regexp.MustCompile(`(?m)^- CRS: v4\.\d+\.\d+ \(coraza-coreruleset module.*; Debian's modsecurity-crs not installed \(nginx-modsec-crs3\)$`),
		// The CPU column must hold a figure: cpu_us read the target's time.
		regexp.MustCompile(`(?m)^\| bare \| [\d,]+ \| 1\.00× \| (\d+\.\d [µm]s|\d+ [µm]s) \|`),
		regexp.MustCompile(`(?m)^\| edgeguard-cheap \| [\d,]+ \| \d\.\d\d× \|`),
		regexp.MustCompile(`(?m)^### flood\n\n.*\n.*\n\| edgeguard-cheap \| [\d,]+ \| [\d.]+ [µm]s \|`),
		regexp.MustCompile(`(?m)^- nginx skipped: nginx is not installed$`),
		regexp.MustCompile(`(?m)^- nginx-modsec-crs3 skipped: (nginx|libnginx-mod-http-modsecurity) is not installed$`),
		regexp.MustCompile(`(?m)^- \*\*(met|not met)\*\* \([\d.]+×\): a denial ≥ 3× cheaper`),
	} {
		if !want.MatchString(stdout) {
			t.Errorf("run.sh's report lacks %s\nreport:\n%s\nlog:\n%s", want, stdout, stderr)
		}
	}
	if strings.Contains(stdout, " 0.0 µs |") {
		t.Errorf("a target used no CPU time under load: cpu_us reads nothing\n%s", stdout)
	}
}

// runSh runs run.sh with PATH=bin and the given arguments, and returns its
// report and its log; it fails the test unless run.sh exits 0.
func runSh(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./run.sh", args...)
	env := []string{"PATH=" + bin, "TMPDIR=" + t.TempDir()}
	// go needs its caches and module settings; nothing else of the
	// environment is passed on.
	for _, kv := range os.Environ() {
		for _, k := range []string{"HOME=", "GOPATH=", "GOCACHE=", "GOMODCACHE=", "GOFLAGS=", "GOPROXY=", "GOTOOLCHAIN=", "GOROOT="} {
			if strings.HasPrefix(kv, k) {
				env = append(env, kv)
			}
		}
	}
	cmd.Env = env
	var out, log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &log
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("run.sh %s: %v\nreport:\n%s\nlog:\n%s", strings.Join(args, " "), err, out.String(), log.String())
	}
	t.Logf("run.sh took %s", time.Since(start).Round(time.Second))
	return out.String(), log.String()
}

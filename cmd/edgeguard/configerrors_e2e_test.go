package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// brokenNeighbours copies into dir what a config points at, each broken
// its own way (testdata/broken-neighbours: a list with a bad line, a pack
// without pack.yaml, a pack whose rule does not compile). missing.txt is
// named but not there.
func brokenNeighbours(t *testing.T, dir string) {
	t.Helper()
	if err := os.CopyFS(dir, os.DirFS("../../testdata/broken-neighbours")); err != nil {
		t.Fatal(err)
	}
}

// buildBroken is a config whose stages do not build; with parseProblems
// it has problems Parse finds too, around them.
func buildBroken(parseProblems bool) string {
	volumetric, level := "{rate: 5/s}", "info"
	if parseProblems {
		volumetric, level = "{rate: 5/s, burst: lots}", "chatty"
	}
	return `upstream: http://127.0.0.1:9000
routes: [{path: /login, upstream: default}]
stages: [reputation, volumetric, waf]
volumetric: ` + volumetric + `
reputation:
  lists:
    - {file: bad.txt, action: deny}
    - {file: missing.txt, action: deny}
waf:
  packs: [nometa]
route_stages:
  /login:
    waf: {packs: [broken]}
log: {level: ` + level + `}
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
`
}

// buildProblems are the lines validate and run print for buildBroken, in
// order: each FILE:LINE at the key that names the file, each prefixed
// once. The last is followed by Coraza's own words.
func buildProblems(path, dir string, parseProblems bool) []string {
	var want []string
	if parseProblems {
		want = append(want, path+`:4: volumetric.burst: want an integer 1-5764607523, got "lots"`) // at 5/s, a longer burst would overflow
	}
	want = append(want,
		path+`:7: reputation.lists[0]: `+dir+`/bad.txt:3: "1.2.3.4/99" is not an IP address or CIDR prefix`,
		path+`:8: reputation.lists[1]: `+dir+`/missing.txt: no such file or directory`,
		path+`:10: waf.packs[0]: `+dir+`/nometa/pack.yaml: no such file or directory`,
		path+`:13: route_stages./login.waf.packs[0]: `+dir+`/broken/rules.conf:2: `,
	)
	if parseProblems {
		want = append(want, path+`:14: log.level: "chatty": want debug, info, warn or error`)
	}
	return want
}

// matchProblems checks out against want line by line: equal, or, for a
// want ending in ": ", starting with it.
func matchProblems(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if lines[i] != w && !(strings.HasSuffix(w, ": ") && strings.HasPrefix(lines[i], w)) {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], w)
		}
	}
}

// refusedBlocks is a config whose blocks each have a problem of their own
// (so none is built) and name files that are broken or missing, beside a
// certificate file that is missing.
const refusedBlocks = `upstream: http://127.0.0.1:9000
stages: [reputation, waf, quota]
reputation:
  strikes: {threshold: -1}
  lists:
    - {file: bad.txt, action: deny}
    - {file: missing.txt, action: deny}
waf:
  paranoia: 9
  packs: [nometa]
quota:
  fleet_size: -1
  keys_file: nokeys.txt
  policies: [{name: api, rate: 5/s}]
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
tls: {cert: nocert.pem, key: nokey.pem}
`

// refusedBlocksProblems are the lines validate and run print for
// refusedBlocks: each block's own problem and its files'.
func refusedBlocksProblems(path, dir string) []string {
	return []string{
		path + `:4: reputation.strikes.threshold: must not be negative`,
		path + `:6: reputation.lists[0]: ` + dir + `/bad.txt:3: "1.2.3.4/99" is not an IP address or CIDR prefix`,
		path + `:7: reputation.lists[1]: ` + dir + `/missing.txt: no such file or directory`,
		path + `:9: waf.paranoia: 9: want 1 to 4`,
		path + `:10: waf.packs[0]: ` + dir + `/nometa/pack.yaml: no such file or directory`,
		path + `:12: quota.fleet_size: "-1": want auto or a number of nodes, at least 1`,
		path + `:13: quota.keys_file: ` + dir + `/nokeys.txt: no such file or directory`,
		path + `:17: tls.cert: loading certificate ` + dir + `/nocert.pem with key ` + dir + `/nokey.pem: open ` + dir + `/nocert.pem: no such file or directory`,
	}
}

// TestE2EBuildProblemsInOneRun: the problems only building finds (lists
// that do not parse, files missing, packs that do not compile), in the
// shared chain and in a route's, are reported in the same run as the
// problems of the file itself, each once as FILE:LINE at the key that
// names the file, by validate and by run's refusal to start; and so are
// the files named by a block that has a problem of its own and is
// therefore not built.
func TestE2EBuildProblemsInOneRun(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		name string
		cfg  string
		want func(path, dir string) []string
	}{
		{"build problems only", buildBroken(false), func(path, dir string) []string { return buildProblems(path, dir, false) }},
		{"beside the file's own problems", buildBroken(true), func(path, dir string) []string { return buildProblems(path, dir, true) }},
		{"in blocks with problems of their own", refusedBlocks, refusedBlocksProblems},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			brokenNeighbours(t, dir)
			path := filepath.Join(dir, "edge.yaml")
			if err := os.WriteFile(path, []byte(tc.cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			want := tc.want(path, dir)
			out, err := exec.Command(bin, "validate", path).Output()
			if code := exitCode(err); code != 1 {
				t.Fatalf("validate: exit %d, want 1\n%s", code, out)
			}
			matchProblems(t, string(out), want)

			cmd := exec.Command(bin, "run", path)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if code := exitCode(cmd.Run()); code != 1 {
				t.Fatalf("run: exit %d, want 1\n%s", code, stderr.String())
			}
			matchProblems(t, stderr.String(), want)
		})
	}
}

// TestE2EReloadRefusalNamesEveryProblem: a SIGHUP with a config whose
// stages do not build is refused, and the log line says every problem as
// validate does; the old config keeps serving.
func TestE2EReloadRefusalNamesEveryProblem(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, "upstream: {{upstream}}\nlisten: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nstages: []\n", up.URL)
	brokenNeighbours(t, p.dir)
	p.writeConfig(t, buildBroken(true), up.URL)
	p.cmd.Process.Signal(syscall.SIGHUP)
	m, _ := p.log.waitFor(t, 0, 60*time.Second, map[string]string{"msg": "reload refused; the previous config keeps serving"})
	errText, _ := m["error"].(string)
	matchProblems(t, errText, buildProblems(p.config, p.dir, true))
	resp, err := http.Get("http://" + p.edge + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the refused reload: %d, want 200 from the old config", resp.StatusCode)
	}
}

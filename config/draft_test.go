package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

const draftFile = `upstream: http://127.0.0.1:9000
routes: [{path: /login, upstream: default}]
reputation:
  lists:
    - {file: deny.txt, action: deny}
waf:
  paranoia: high
route_stages:
  /login:
    volumetric: {rate: 5/m}
`

// TestDraft: a file with problems comes back with the settings that could
// be read, and Refused names the blocks that had a problem, so a checker
// builds only the sound ones.
func TestDraft(t *testing.T) {
	_, err := Parse("edge.yaml", []byte(draftFile))
	var ce *Error
	if !errors.As(err, &ce) || ce.Draft() == nil {
		t.Fatalf("want an *Error with a draft, got %v", err)
	}
	d := ce.Draft()
	if len(d.Reputation.Lists) != 1 || d.Reputation.Lists[0].File != "deny.txt" {
		t.Errorf("the draft lost the sound reputation block: %+v", d.Reputation)
	}
	for field, want := range map[string]bool{
		"waf": true, "waf.paranoia": true, "reputation": false, "volumetric": false,
		"route_stages./login.volumetric": false, "": false,
	} {
		if got := d.Refused(field); got != want {
			t.Errorf("Refused(%q) = %v, want %v", field, got, want)
		}
	}
	if _, err := Parse("edge.yaml", []byte("upstream: [\n")); !errors.As(err, &ce) || ce.Draft() != nil {
		t.Errorf("a file that does not decode has no draft: %v", err)
	}
	cfg, err := Parse("edge.yaml", []byte("upstream: http://127.0.0.1:9000\n"))
	if err != nil || cfg.Refused("waf") || cfg.Refused("") {
		t.Errorf("a config that parsed refuses nothing: %v", err)
	}
}

// TestLocate: a problem found after Parse (a stage that did not build) is
// placed at the line of its field, like Parse's own; one without a field
// at the top of the file; a Config built in code has no lines to give.
func TestLocate(t *testing.T) {
	_, err := Parse("edge.yaml", []byte(draftFile))
	var ce *Error
	errors.As(err, &ce)
	built := errors.Join(
		filters.FieldErrorf("reputation.lists[0]", "deny.txt:3: %q is not an IP address or CIDR prefix", "1.2.3.4/99"),
		filters.FieldErrorf("route_stages./login.volumetric", "no"),
		filters.FieldErrorf("quota", "not in the file"),
		errors.New("the file's own"),
	)
	got := ce.With(ce.Draft().Locate(built)).Error()
	want := `edge.yaml:1: quota: not in the file
edge.yaml:1: the file's own
edge.yaml:5: reputation.lists[0]: deny.txt:3: "1.2.3.4/99" is not an IP address or CIDR prefix
edge.yaml:7: waf.paranoia: want an integer 1-4, got "high"
edge.yaml:10: route_stages./login.volumetric: no`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if err := (&Config{}).Locate(built); err != built {
		t.Errorf("a Config built in code changed the error: %v", err)
	}
	if (&Config{}).Locate(nil) != nil || ce.Draft().Locate(nil) != nil {
		t.Error("Locate(nil) is not nil")
	}
}

// TestRefusedBlocksFiles: Parse checks the files named by a block of the
// chain that it refused (the draft does not build that block), each at
// the key that names it; a sound block's files are left to building, and
// a block the chain does not run is not read.
func TestRefusedBlocksFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "good"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "good", "pack.yaml"), []byte("name: good\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "good", "rules.conf"), []byte("# no rules\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "keys.txt"), []byte("not a hash\n"), 0o644)
	for _, tc := range []struct {
		name, yaml string
		want       []string // the problems naming a file (in dir), in order
	}{
		{"a route's packs beyond the top level's", `stages: [waf]
waf: {paranoia: 9, packs: [good]}
routes: [{path: /login, upstream: default}]
route_stages:
  /login:
    waf: {packs: [good, gone]}
`, []string{`:7: route_stages./login.waf.packs[1]: ` + dir + `/gone/pack.yaml: no such file or directory`}},
		{"quota keys and jwt key files", `stages: [quota]
quota:
  fleet_size: -1
  key: ["header:X-Key"]
  keys_file: keys.txt
  jwt: {key_file: jwt.pem, algorithms: [RS256]}
  policies: [{name: api, rate: 5/s}]
`, []string{
			`:6: quota.keys_file: ` + dir + `/keys.txt:1: "not" is not a SHA-256 in hex`,
			`:7: quota.jwt.key_file: ` + dir + `/jwt.pem: no such file or directory`,
		}},
		{"a sound block's files are building's", `stages: [reputation, waf]
reputation: {lists: [{file: gone.txt, action: deny}]}
waf: {paranoia: 9}
`, nil},
		{"a block the chain does not run", `stages: [waf]
reputation: {strikes: {threshold: -1}, lists: [{file: gone.txt, action: deny}]}
waf: {paranoia: 9}
`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "edge.yaml")
			_, err := Parse(path, []byte("upstream: http://127.0.0.1:9000\n"+tc.yaml))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want an *Error, got %v", err)
			}
			var files []string
			for _, p := range ce.Problems {
				if strings.Contains(p.Msg, dir) {
					files = append(files, p.String())
				}
			}
			if len(files) != len(tc.want) {
				t.Fatalf("file problems:\n%s\nwant %d of them; all:\n%v", strings.Join(files, "\n"), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(files[i], path+w) {
					t.Errorf("got  %s\nwant %s…", files[i], path+w)
				}
			}
		})
	}
}

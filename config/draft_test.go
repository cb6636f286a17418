package config

import (
	"errors"
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

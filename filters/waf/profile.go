package waf

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/edgeguard/edgeguard/rules"
)

// Profile names the kind of traffic a route carries; it selects the CRS
// settings and exclusions embedded in rules/profile-NAME.
type Profile string

// Profiles.
const (
	// ProfileNone is stock CRS: its defaults, no exclusions.
	ProfileNone Profile = ""
	// ProfileWeb is a website: browsers and HTML forms.
	ProfileWeb Profile = "web"
	// ProfileAPI is a REST or JSON API: PUT, PATCH and DELETE, the JSON
	// content types.
	ProfileAPI Profile = "api"
	// ProfileGraphQL is a GraphQL API: api, plus the query document
	// (ARGS:json.query) exempt from the rules its syntax sets off.
	ProfileGraphQL Profile = "graphql"
)

// Validate accepts the profiles above.
func (p Profile) Validate() error {
	switch p {
	case ProfileNone, ProfileWeb, ProfileAPI, ProfileGraphQL:
		return nil
	}
	return fmt.Errorf("%q: want web, api or graphql", string(p))
}

// carriesJSON reports whether the profile's traffic is JSON, which
// body_limit_action partial cannot inspect (a cut document does not parse).
func (p Profile) carriesJSON() bool { return p == ProfileAPI || p == ProfileGraphQL }

// file returns the profile's SecLang for one plugin point ("before" CRS's
// rules, "after" them), or "" for no profile.
func (p Profile) file(point string) (string, error) {
	if p == ProfileNone {
		return "", nil
	}
	name := fmt.Sprintf("profile-%s/profile-%s-%s.conf", p, p, point)
	b, err := fs.ReadFile(rules.Profiles, name)
	if err != nil {
		return "", fmt.Errorf("waf: reading the embedded profile %s: %w", name, err)
	}
	return string(b), nil
}

// textFieldName is what waf.text_fields accepts: an argument name as Coraza
// spells it (json.note for the JSON key note, json.post.body for a nested
// one, note for a form field), with nothing that SecLang would read as
// syntax (quotes, commas, spaces, |, :, !, regexp slashes).
var textFieldName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$`)

// textFieldRules are the rules a declared free-text field (markdown, code,
// prose) is exempt from, each with the benign text that sets it off (found
// by TestQualityReport's corpus). Every other rule still reads the field:
// XSS (941100 libinjection, 941110 script tags, 941160 HTML injection and
// the rest of 941xxx but 941390), SQL injection (942xxx but 942151), LFI
// path traversal (930100, 930110), RFI (931xxx), Java (944xxx), and every
// rule reads every field that is not declared. The field is exempt only
// in the waf block (a route's, in route_stages) that declares it.
var textFieldRules = []struct {
	id     int
	reason string
}{
	{930120, "930120 (OS file names): prose about dot files, such as `rm -rf ~/.cache/go-build`"},
	{932125, "932125 (shell commands after a separator): a fenced ```bash block of commands"},
	{932235, "932235 (Unix commands): commands quoted in prose, `curl -s URL`, `git clone`"},
	{932250, "932250 (Unix commands after a pipe or backtick): `curl ... | jq .`"},
	{932370, "932370 (Windows commands): a fenced code block whose lines start with command names"},
	{933150, "933150 (PHP function names): ordinary calls in Python or JS snippets, os.getcwd(), print()"},
	{934100, "934100 (Node.js injection): console.log( in a JavaScript snippet"},
	{934110, "934110 (SSRF): http://localhost URLs in instructions for developers"},
	{941390, "941390 (JavaScript methods): fetch( in a JavaScript snippet; script tags, event handlers and the other XSS rules still apply"},
	{942151, "942151 (SQL function names): res.json( in a JavaScript snippet"},
}

// textFieldExclusions returns one SecRuleUpdateTargetById per rule and
// field (Coraza applies only the first id of a directive that lists
// several).
func textFieldExclusions(fields []string) string {
	var b strings.Builder
	for _, f := range fields {
		for _, r := range textFieldRules {
			fmt.Fprintf(&b, "# %s\nSecRuleUpdateTargetById %d \"!ARGS:%s\"\n", r.reason, r.id, f)
		}
	}
	return b.String()
}

// profileDirectives returns the SecLang of a profile and of the declared
// text fields: before goes after crs-setup.conf and before CRS's rules,
// after goes after CRS's rules.
func profileDirectives(p Profile, textFields []string) (before, after string, err error) {
	if before, err = p.file("before"); err != nil {
		return "", "", err
	}
	if after, err = p.file("after"); err != nil {
		return "", "", err
	}
	return before, after + textFieldExclusions(textFields), nil
}

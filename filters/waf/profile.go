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
// prose) is exempt from, with the reason for each. Every other rule,
// including all of CRS's XSS rules (941xxx), still reads the field, and
// the field is exempt only on the route whose waf block declares it.
var textFieldRules = []struct {
	id     int
	reason string
}{}

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

package waf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
)

// FuzzTextFieldExclusions: a text field name that Validate accepts yields
// exactly one SecRuleUpdateTargetById per rule, naming that one argument,
// and the directives compile; nothing it accepts can smuggle SecLang in.
func FuzzTextFieldExclusions(f *testing.F) {
	for _, s := range []string{"json.note", "json.post.body", "message", `json.x" "id:1,deny`, "json.a|ARGS", "a\nSecRuleEngine Off", ""} {
		f.Add(s)
	}
	var base strings.Builder
	for _, r := range textFieldRules {
		fmt.Fprintf(&base, "SecRule ARGS \"@rx ^attack$\" \"id:%d,phase:2,deny,log\"\n", r.id)
	}
	f.Fuzz(func(t *testing.T, field string) {
		if (Config{TextFields: []string{field}}).Validate() != nil {
			return
		}
		got := textFieldExclusions([]string{field})
		var directives []string
		for _, l := range strings.Split(got, "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				directives = append(directives, l)
			}
		}
		if len(directives) != len(textFieldRules) {
			t.Fatalf("%q: %d directives, want %d:\n%s", field, len(directives), len(textFieldRules), got)
		}
		for i, d := range directives {
			if want := fmt.Sprintf("SecRuleUpdateTargetById %d \"!ARGS:%s\"", textFieldRules[i].id, field); d != want {
				t.Fatalf("directive %q, want %q", d, want)
			}
		}
		if _, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(base.String() + got)); err != nil {
			t.Fatalf("%q: exclusions do not compile: %v", field, err)
		}
	})
}

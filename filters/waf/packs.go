package waf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corazawaf/coraza/v3"
	"github.com/goccy/go-yaml"
)

// ErrPack is wrapped by every error about a rule pack's layout or metadata.
var ErrPack = errors.New("waf: bad rule pack")

// Pack is a rule pack directory as found on disk.
type Pack struct {
	// Dir is the pack's directory (absolute).
	Dir string
	// Meta is pack.yaml.
	Meta PackMeta
	// Rules are the pack's .conf files, sorted by name: the load order.
	Rules []string
	// Tests are the pack's tests/*.yaml files, sorted by name.
	Tests []string
}

// PackMeta is a pack's pack.yaml.
type PackMeta struct {
	// Name identifies the pack in logs and test output.
	Name string `yaml:"name" json:"name"`
	// Version is the pack's own version.
	Version string `yaml:"version" json:"version"`
	// Description says what the pack is for.
	Description string `yaml:"description" json:"description"`
	// Profile is the waf.profile the pack is written for, if any: its
	// tests run with it when the config given to `rules test` sets none.
	Profile Profile `yaml:"profile" json:"profile"`
}

// LoadPack reads the pack in dir (relative paths against base).
func LoadPack(base, dir string) (Pack, error) {
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(base, dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Pack{}, fmt.Errorf("resolving pack dir %s: %w", dir, err)
	}
	p := Pack{Dir: abs}
	metaFile := filepath.Join(abs, "pack.yaml")
	raw, err := os.ReadFile(metaFile)
	if err != nil {
		return Pack{}, fmt.Errorf("%w: %s: %w", ErrPack, dir, err)
	}
	if p.Meta, err = parsePackMeta(raw); err != nil {
		return Pack{}, fmt.Errorf("%w: %s: %w", ErrPack, metaFile, err)
	}
	if p.Rules, err = filepath.Glob(filepath.Join(abs, "*.conf")); err != nil {
		return Pack{}, fmt.Errorf("listing rules of pack %s: %w", dir, err)
	}
	if len(p.Rules) == 0 {
		return Pack{}, fmt.Errorf("%w: %s: no .conf files", ErrPack, dir)
	}
	if p.Tests, err = filepath.Glob(filepath.Join(abs, "tests", "*.yaml")); err != nil {
		return Pack{}, fmt.Errorf("listing tests of pack %s: %w", dir, err)
	}
	slices.Sort(p.Rules)
	slices.Sort(p.Tests)
	return p, nil
}

// parsePackMeta decodes pack.yaml strictly: an unknown key is a typo.
func parsePackMeta(raw []byte) (PackMeta, error) {
	var m PackMeta
	if err := yaml.UnmarshalWithOptions(raw, &m, yaml.Strict()); err != nil {
		return PackMeta{}, errors.New(yaml.FormatError(err, false, true))
	}
	if strings.TrimSpace(m.Name) == "" {
		return PackMeta{}, errors.New("name is missing")
	}
	if err := m.Profile.Validate(); err != nil {
		return PackMeta{}, fmt.Errorf("profile: %w", err)
	}
	return m, nil
}

func globOS(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// directive is one SecLang directive of a file, continuation lines joined,
// with the line it starts on; a chained rule and its links form one unit.
type directive struct {
	line int
	text string
}

// splitDirectives cuts SecLang text into directives the way Coraza reads
// it: comments and blank lines dropped, lines ending in \ continued, a rule
// with "chain" in its actions joined to the rule that follows.
func splitDirectives(src string) []directive {
	var (
		out     []directive
		cur     strings.Builder
		start   int
		chained bool
		inTicks bool
	)
	lines := strings.Split(src, "\n")
	for i, raw := range lines {
		l := strings.TrimSpace(raw)
		if l == "" || (l[0] == '#' && !inTicks && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 && !chained {
			start = i + 1
		}
		switch {
		case !inTicks && strings.HasSuffix(l, "`"):
			inTicks = true
			cur.WriteString(l + "\n")
			continue
		case inTicks && strings.HasPrefix(l, "`"):
			inTicks = false
			cur.WriteString(l)
		case inTicks:
			cur.WriteString(l + "\n")
			continue
		case strings.HasSuffix(l, "\\"):
			cur.WriteString(strings.TrimSuffix(l, "\\"))
			continue
		default:
			cur.WriteString(l)
		}
		text := cur.String()
		cur.Reset()
		if chained && len(out) > 0 {
			out[len(out)-1].text += "\n" + text
		} else {
			out = append(out, directive{line: start, text: text})
		}
		chained = hasChain(text)
	}
	if cur.Len() > 0 {
		out = append(out, directive{line: start, text: cur.String()})
	}
	return out
}

func hasChain(text string) bool {
	lower := strings.ToLower(text)
	for _, sep := range []string{`"chain"`, `"chain,`, `,chain,`, `,chain"`, `, chain`, `,chain'`, `'chain,`} {
		if strings.Contains(lower, sep) {
			return true
		}
	}
	return false
}

// locate turns a WAF build error into FILE:LINE: message when the cause is
// in a pack file. Coraza's parse errors name neither file nor line, so each
// directive of each pack file is compiled alone (on an empty WAF: cheap)
// and the first whose error matches the build error is the culprit.
func (s engineSettings) locate(buildErr error) error {
	msg := buildErr.Error()
	var fallback error
	for _, f := range s.packFiles {
		src, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, d := range splitDirectives(string(src)) {
			_, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(rootFS{}).WithDirectives(d.text))
			if err == nil {
				continue
			}
			located := fmt.Errorf("%s:%d: %s", f, d.line, strings.TrimPrefix(err.Error(), "invalid WAF config from string: "))
			if err.Error() == msg || strings.Contains(msg, err.Error()) {
				return located
			}
			// A directive that needs CRS (SecRuleUpdateTargetById 942100)
			// fails alone for a different reason; keep looking.
			if fallback == nil && !dependsOnCRS(d.text) {
				fallback = located
			}
		}
	}
	if fallback != nil {
		return fallback
	}
	return fmt.Errorf("building the WAF: %w", buildErr)
}

func dependsOnCRS(text string) bool {
	lower := strings.ToLower(text)
	return strings.HasPrefix(lower, "secruleupdate") || strings.HasPrefix(lower, "secruleremove")
}

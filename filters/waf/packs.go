package waf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corazawaf/coraza/v3"
	"github.com/goccy/go-yaml"
)

// ErrPack is matched (errors.Is) by every error about a rule pack's layout
// or metadata. Its text is not repeated in theirs: each names the pack's
// directory or file, and is reported under the pack's key, waf.packs[N].
var ErrPack = errors.New("waf: bad rule pack")

// packError is a problem with a pack's layout or metadata: an ErrPack.
type packError struct{ error }

func (e packError) Unwrap() error        { return e.error }
func (e packError) Is(target error) bool { return target == ErrPack }

func packErrorf(format string, args ...any) error {
	return packError{fmt.Errorf(format, args...)}
}

// packFileError is a directive of a pack file that does not compile; its
// text is FILE:LINE: message.
type packFileError struct {
	file string
	error
}

func (e *packFileError) Unwrap() error { return e.error }

// Pack is a rule pack directory as found on disk. It is laid out either
// as an edgeguard pack (pack.yaml, *.conf loaded after CRS, tests/*.yaml)
// or as a CRS plugin as published (plugins/*-config.conf,
// plugins/*-before.conf, plugins/*-after.conf, tests/regression/...; a
// pack.yaml is then optional), or both.
type Pack struct {
	// Dir is the pack's directory (absolute).
	Dir string
	// Meta is pack.yaml; for a plugin without one, the name is the
	// directory's.
	Meta PackMeta
	// Config, Before and After are a CRS plugin's plugins/*-config.conf,
	// *-before.conf and *-after.conf, each sorted by name. They load at
	// CRS's plugin points: config after crs-setup (and edgeguard's
	// settings), before ahead of CRS's rules, after behind them.
	Config, Before, After []string
	// Rules are the pack's top-level .conf files, sorted by name: loaded
	// after CRS and after every plugin's after files.
	Rules []string
	// Tests are the pack's go-ftw test files: tests/**/*.yaml (and .yml),
	// sorted by path.
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

// pluginDir is where a CRS plugin keeps its rule files.
const pluginDir = "plugins"

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
	if err := p.loadPlugin(); err != nil {
		return Pack{}, err
	}
	plugin := len(p.Config)+len(p.Before)+len(p.After) > 0
	metaFile := filepath.Join(abs, "pack.yaml")
	raw, err := os.ReadFile(metaFile)
	switch {
	case err == nil:
		if p.Meta, err = parsePackMeta(raw); err != nil {
			return Pack{}, packErrorf("%s: %w", metaFile, err)
		}
	case plugin && errors.Is(err, fs.ErrNotExist):
		p.Meta.Name = filepath.Base(abs)
	default:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // it names the file, which the message names already
		}
		return Pack{}, packErrorf("%s: %w", metaFile, err)
	}
	if p.Rules, err = filepath.Glob(filepath.Join(abs, "*.conf")); err != nil {
		return Pack{}, fmt.Errorf("listing rules of pack %s: %w", dir, err)
	}
	if len(p.Rules) == 0 && !plugin {
		return Pack{}, packErrorf("%s: no .conf files (nor plugins/*-config|before|after.conf)", dir)
	}
	if p.Tests, err = testFiles(filepath.Join(abs, "tests")); err != nil {
		return Pack{}, fmt.Errorf("listing tests of pack %s: %w", dir, err)
	}
	slices.Sort(p.Rules)
	return p, nil
}

// loadPlugin sorts the .conf files of plugins/ into the three plugin
// points. Any other .conf file there is refused: CRS would not load it,
// and silently skipping rules the operator meant to run opens a hole.
func (p *Pack) loadPlugin() error {
	files, err := filepath.Glob(filepath.Join(p.Dir, pluginDir, "*.conf"))
	if err != nil {
		return fmt.Errorf("listing plugin files of pack %s: %w", p.Dir, err)
	}
	slices.Sort(files)
	for _, f := range files {
		switch base := filepath.Base(f); {
		case strings.HasSuffix(base, "-config.conf"):
			p.Config = append(p.Config, f)
		case strings.HasSuffix(base, "-before.conf"):
			p.Before = append(p.Before, f)
		case strings.HasSuffix(base, "-after.conf"):
			p.After = append(p.After, f)
		default:
			return packErrorf("%s: a plugin file must end in -config.conf, -before.conf or -after.conf", f)
		}
	}
	return nil
}

// testFiles lists the YAML files under dir, at any depth, sorted.
func testFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			out = append(out, path)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// packFiles are the .conf files of the configured packs, by load point.
type packFiles struct {
	config, before, after, rules []string
}

// add appends p's files; packs keep their configured order at each point.
func (pf *packFiles) add(p Pack) {
	pf.config = append(pf.config, p.Config...)
	pf.before = append(pf.before, p.Before...)
	pf.after = append(pf.after, p.After...)
	pf.rules = append(pf.rules, p.Rules...)
}

// all lists every file in load order.
func (pf packFiles) all() []string {
	return slices.Concat(pf.config, pf.before, pf.after, pf.rules)
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
	for _, f := range s.packFiles.all() {
		src, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, d := range splitDirectives(string(src)) {
			_, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(rootFS{}).WithDirectives(d.text))
			if err == nil {
				continue
			}
			located := &packFileError{file: f, error: fmt.Errorf("%s:%d: %s", f, d.line, strings.TrimPrefix(err.Error(), "invalid WAF config from string: "))}
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

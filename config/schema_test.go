package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

func compiledSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return s
}

// instance turns a YAML config into the JSON value the schema judges.
func instance(t *testing.T, name string, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if v == nil {
		v = map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return inst
}

// notConfigs are the YAML files under testdata that are not configs that
// load, each kind for its reason. Any other YAML file there must load: a
// config that stops loading fails the test instead of dropping out of it.
var notConfigs = []struct{ glob, why string }{
	{"testdata/errors/*.yaml", "configs broken on purpose (TestGolden's inputs)"},
	{"../testdata/broken-neighbours/*/pack.yaml", "a rule pack's metadata, broken on purpose"},
	{"../testdata/packs/*/pack.yaml", "rule packs' metadata"},
	{"../testdata/plugins/*/tests/regression/*/*.yaml", "CRS plugins' regression tests"},
}

// exampleConfigs are the configs users copy: every YAML example of the
// README, every config under testdata (but notConfigs) and the demo's.
func exampleConfigs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1) {
		out[fmt.Sprintf("README.md example %d", i+1)] = b[1]
	}
	demo, err := os.ReadFile("../cmd/edgeguard/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out["demo.yaml"] = []byte(strings.NewReplacer("{{listen}}", "127.0.0.1:8080", "{{admin}}", "127.0.0.1:9090", "{{upstream}}", "http://127.0.0.1:9000").Replace(string(demo)))
	for _, dir := range []string{"testdata", "../testdata"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) || notConfig(p) {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := Parse(p, data); err != nil {
				t.Errorf("%s does not load, and notConfigs does not list it:\n%v", p, err)
			}
			out[p] = data
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// notConfig reports whether notConfigs lists path.
func notConfig(path string) bool {
	for _, nc := range notConfigs {
		if ok, _ := filepath.Match(nc.glob, path); ok {
			return true
		}
	}
	return false
}

// TestSchemaAcceptsTheExamples: the README's examples, the demo and every
// config in testdata are valid against the schema (and load), so an editor
// using the schema never flags a config edgeguard runs.
func TestSchemaAcceptsTheExamples(t *testing.T) {
	s := compiledSchema(t)
	configs := exampleConfigs(t)
	readme := 0
	for name, data := range configs {
		if strings.HasPrefix(name, "README") {
			readme++
			if _, err := Parse(name, data); err != nil {
				t.Errorf("%s does not load:\n%v", name, err)
			}
		}
		if err := s.Validate(instance(t, name, data)); err != nil {
			t.Errorf("%s is refused by the schema:\n%v\n%s", name, err, data)
		}
	}
	if readme < 3 || len(configs) < readme+2 {
		t.Fatalf("found %d configs, %d from the README: the extraction is broken", len(configs), readme)
	}
}

// TestSchemaRefuses: the schema flags what the decoder refuses, so an
// editor shows it before validate does.
func TestSchemaRefuses(t *testing.T) {
	s := compiledSchema(t)
	for _, tc := range []struct{ name, yaml string }{
		{"unknown top-level key", "upstream: http://127.0.0.1:9000\nlistne: :80\n"},
		{"unknown key in a stage", "waf: {paranoya: 2}\n"},
		{"paranoia as a word", "waf: {paranoia: high}\n"},
		{"mode not in the enum", "waf: {mode: detect}\n"},
		{"rate without a period", "volumetric: {rate: fast}\n"},
		{"duration without a unit", "client_ip: {proxy_protocol: {header_timeout: 5}}\n"},
		{"size with a fraction", "waf: {body_limit: 1.5MiB}\n"},
		{"stages not a list", "stages: waf\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Validate(instance(t, tc.name, []byte(tc.yaml))); err == nil {
				t.Errorf("the schema accepts %q", tc.yaml)
			}
			if _, err := Parse(tc.name, []byte(tc.yaml)); err == nil {
				t.Errorf("Parse accepts %q: the case does not show a problem", tc.yaml)
			}
		})
	}
}

// TestSchemaCarriesDocComments: descriptions come from the structs' doc
// comments, the ones of the stages' own blocks included.
func TestSchemaCarriesDocComments(t *testing.T) {
	var doc struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Description string `json:"description"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ def, prop, want string }{
		{"Config", "listen", "Listen is the address the edge listener binds"},
		{"waf.Config", "paranoia", "Paranoia"},
		{"quota.Config", "on_error", "OnError"},
	} {
		got := doc.Defs[c.def].Properties[c.prop].Description
		if !strings.Contains(got, c.want) {
			t.Errorf("%s.%s: description %q, want it to contain %q", c.def, c.prop, got, c.want)
		}
	}
}

// TestSchemaDocIsCurrent: schema_doc.go matches the source's comments.
func TestSchemaDocIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run")
	}
	out, err := exec.Command("go", "run", "./internal/schemadoc", "-check").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}

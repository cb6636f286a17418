package config

import (
	"encoding"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"sync"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/invopop/jsonschema"
)

//go:generate go run ./internal/schemadoc -o schema_doc.go

// SchemaID names the schema document; editors show it, nothing fetches it.
const SchemaID = "https://github.com/edgeguard/edgeguard/config.schema.json"

var (
	schemaOnce sync.Once
	schemaJSON []byte
)

// Schema returns the JSON Schema of the config file, reflected from Config
// and the stages' own blocks, with each field's doc comment as its
// description (schemaDoc, generated from the source by go generate). Like
// the decoder, it refuses keys the structs do not have. It describes the
// form of the file; the semantic checks (a stage the chain needs, a host
// that must be loopback) are Validate's.
func Schema() []byte {
	schemaOnce.Do(func() {
		r := &jsonschema.Reflector{
			FieldNameTag:               "yaml",
			RequiredFromJSONSchemaTags: true, // every key of the file may be left out
			Mapper:                     textSchema,
			Namer:                      defName,
			CommentMap:                 schemaDoc,
		}
		s := r.Reflect(&Config{})
		s.ID = jsonschema.ID(SchemaID)
		s.Title = "edgeguard config"
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			// The schema is built from fixed types: failing here is a bug.
			panic("config: marshal the JSON Schema: " + err.Error())
		}
		schemaJSON = append(b, '\n')
	})
	return schemaJSON
}

// defName names a type's definition after its package too: every stage's
// block is a Config.
func defName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndexByte(pkg, '/'); i >= 0 {
		pkg = pkg[i+1:]
	}
	if pkg == "config" || pkg == "" {
		return t.Name()
	}
	return pkg + "." + t.Name()
}

var (
	modeType     = reflect.TypeFor[filters.Mode]()
	durationType = reflect.TypeFor[filters.Duration]()
	sizeType     = reflect.TypeFor[filters.Size]()
	rateType     = reflect.TypeFor[filters.Rate]()
	prefixType   = reflect.TypeFor[netip.Prefix]()
	addrType     = reflect.TypeFor[netip.Addr]()
)

// textSchema describes the values written as text (the TextUnmarshalers)
// by the form their parser accepts; the parser stays the judge of the
// value, the schema only helps an editor.
func textSchema(t reflect.Type) *jsonschema.Schema {
	switch t {
	case modeType:
		return &jsonschema.Schema{Type: "string", Enum: []any{"block", "shadow", "off"}, Description: "block enforces; shadow logs what would be denied and allows; off leaves the stage out."}
	case durationType:
		return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, Description: "A duration with a unit: 50ms, 5s, 10m, 24h."}
	case sizeType:
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			{Type: "integer", Minimum: json.Number("0")},
			{Type: "string", Pattern: `^\s*[0-9]+\s*(KiB|MiB|GiB|KB|MB|GB|B)?\s*$`},
		}, Description: "A byte count with an optional unit: 1048576, 64KiB, 1MiB."}
	case rateType:
		return &jsonschema.Schema{Type: "string", Pattern: `^\s*[0-9]+\s*/\s*([smhd]|[0-9].*)\s*$`, Description: "COUNT/PERIOD: 50/s, 600/m, 1000/h, 20000/d or 10/5s."}
	case prefixType:
		return &jsonschema.Schema{Type: "string", Description: "A CIDR prefix: 10.0.0.0/8, 2001:db8::/32."}
	case addrType:
		return &jsonschema.Schema{Type: "string", Description: "An IP address."}
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return &jsonschema.Schema{Type: "string"}
	}
	return nil
}

// JSONSchemaExtend lets the schema take access: true and access: false
// beside the block, as the decoder does.
func (AccessLog) JSONSchemaExtend(s *jsonschema.Schema) {
	block := *s
	block.Description = ""
	*s = jsonschema.Schema{Description: s.Description, OneOf: []*jsonschema.Schema{{Type: "boolean"}, &block}}
}

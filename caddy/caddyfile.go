package edgeguardcaddy

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/edgeguard/edgeguard/config"
	"github.com/goccy/go-yaml"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("edgeguard", parseCaddyfile)
	// Before everything that answers or rewrites a request (redir,
	// rewrite, try_files, basic_auth, handle, route, respond,
	// reverse_proxy, file_server): the guard must see the request as the
	// client sent it and before anything is served. "before
	// reverse_proxy" would still run after respond.
	httpcaddyfile.RegisterDirectiveOrder("edgeguard", httpcaddyfile.Before, "redir")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var g Handler
	err := g.UnmarshalCaddyfile(h.Dispenser)
	return &g, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens:
//
//	edgeguard [NAME] {
//	    config FILE
//	    stages STAGE...
//	    reputation { ... }
//	    volumetric { rate 10/s; burst 20 }
//	    waf { mode block; paranoia 1 }
//	    quota {
//	        store memory
//	        key header:X-API-Key ip
//	        policies { name default; rate 600/m; burst 50 }
//	    }
//	}
//
// Inside a stage block each line is one of the stage's YAML keys and its
// value; several values make a list; a block is a nested object, and a
// block under a list key (policies, lists) is one item of the list.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		h.Name = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	blocks := map[string]any{}
	for d.NextBlock(0) {
		switch key := d.Val(); key {
		case "config":
			if !d.AllArgs(&h.ConfigFile) {
				return d.ArgErr()
			}
		case "stages":
			h.Stages = d.RemainingArgs()
		default:
			_, ok := config.LookupStage(key)
			field, typed := stageField(key)
			if !ok || !typed {
				return d.Errf("unknown subdirective %q: want config, stages, reputation, volumetric, waf or quota", key)
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			m, err := readBlock(d, field.Type)
			if err != nil {
				return err
			}
			blocks[key] = m
		}
	}
	return h.setBlocks(d, blocks)
}

// stageField is the field of Config that holds the named stage's block.
func stageField(stage string) (reflect.StructField, bool) {
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlName(f) == stage {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// setBlocks decodes the stage blocks with edgeguard's own strict decoder
// (unknown keys and bad values are errors) into h's fields.
func (h *Handler) setBlocks(d *caddyfile.Dispenser, blocks map[string]any) error {
	if len(blocks) == 0 {
		return nil
	}
	// Each block is checked whole, as the stage will run it: a block
	// here replaces the file's, it does not patch it.
	var stages []string
	for _, s := range config.StageNames() {
		if _, ok := blocks[s]; ok {
			stages = append(stages, s)
		}
	}
	blocks["stages"] = stages
	doc, err := yaml.Marshal(blocks)
	if err != nil {
		return d.Errf("edgeguard: encode the stage blocks: %v", err)
	}
	cfg, err := config.Parse("edgeguard block", doc)
	if err != nil {
		return d.Errf("%v\n%s", err, doc)
	}
	if _, ok := blocks["reputation"]; ok {
		h.Reputation = &cfg.Reputation
	}
	if _, ok := blocks["volumetric"]; ok {
		h.Volumetric = &cfg.Volumetric
	}
	if _, ok := blocks["waf"]; ok {
		h.WAF = &cfg.WAF
	}
	if _, ok := blocks["quota"]; ok {
		h.Quota = &cfg.Quota
	}
	return nil
}

// readBlock reads the block the dispenser is at into a map for a value of
// type t, typing each value as t's field wants it.
func readBlock(d *caddyfile.Dispenser, t reflect.Type) (map[string]any, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	m := map[string]any{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		f, ok := fieldByYAML(t, key)
		if !ok {
			return nil, d.Errf("unknown key %q", key)
		}
		args := d.RemainingArgs()
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case len(args) == 0 && ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			item, err := readBlock(d, ft.Elem())
			if err != nil {
				return nil, err
			}
			list, _ := m[key].([]any)
			m[key] = append(list, item)
		case len(args) == 0:
			sub, err := readBlock(d, ft)
			if err != nil {
				return nil, err
			}
			m[key] = sub
		case ft.Kind() == reflect.Slice && !isText(ft):
			list, _ := m[key].([]any)
			for _, a := range args {
				list = append(list, scalar(a, ft.Elem()))
			}
			m[key] = list
		case len(args) == 1:
			m[key] = scalar(args[0], ft)
		default:
			return nil, d.Errf("%s takes one value, got %d", key, len(args))
		}
	}
	return m, nil
}

// scalar types a Caddyfile token for a field of type t.
func scalar(s string, t reflect.Type) any {
	if isText(t) {
		return s
	}
	switch t.Kind() {
	case reflect.Bool:
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n
		}
	case reflect.Float32, reflect.Float64:
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			return n
		}
	}
	return s // the decoder names the key and the bad value
}

// isText reports whether t decodes from text (a rate, a size, a duration).
func isText(t reflect.Type) bool {
	type textUnmarshaler interface{ UnmarshalText([]byte) error }
	return reflect.PointerTo(t).Implements(reflect.TypeFor[textUnmarshaler]())
}

func fieldByYAML(t reflect.Type, key string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous || strings.Contains(f.Tag.Get("yaml"), "inline") {
			if sub, ok := fieldByYAML(f.Type, key); ok {
				return sub, true
			}
			continue
		}
		if f.IsExported() && yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)

package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/filters/volumetric"
	"github.com/edgeguard/edgeguard/filters/waf"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// The stage table: everything config loading, route overrides, the Guard,
// explain and readiness know about stages. Adding a stage is one entry
// here (or one Register call): a stage whose block is a Config with Build
// needs nothing else; a field in Config and RouteStages is only a typed
// convenience for Go code.
var (
	tableMu sync.RWMutex
	table   = []Stage{
		StageOf(Entry[reputation.Config]{
			Name:  "reputation",
			Mode:  func(c reputation.Config) filters.Mode { return c.Mode },
			Field: func(c *Config) *reputation.Config { return &c.Reputation },
			// Bans and strikes follow the client whatever the route:
			// reputation is one instance for the whole edge.
		}),
		StageOf(Entry[volumetric.Config]{
			Name:       volumetric.Name,
			Mode:       func(c volumetric.Config) filters.Mode { return c.Mode },
			Field:      func(c *Config) *volumetric.Config { return &c.Volumetric },
			Defaults:   volumetricDefaults,
			PerRoute:   true,
			RouteField: func(rs *RouteStages) **volumetric.Config { return &rs.Volumetric },
		}),
		StageOf(Entry[waf.Config]{
			Name:       waf.Name,
			Mode:       func(c waf.Config) filters.Mode { return c.Mode },
			Field:      func(c *Config) *waf.Config { return &c.WAF },
			PerRoute:   true,
			RouteField: func(rs *RouteStages) **waf.Config { return &rs.WAF },
		}),
		StageOf(Entry[quota.Config]{
			Name:       quota.Name,
			Mode:       func(c quota.Config) filters.Mode { return c.Mode },
			Field:      func(c *Config) *quota.Config { return &c.Quota },
			PerRoute:   true,
			RouteField: func(rs *RouteStages) **quota.Config { return &rs.Quota },
		}),
	}
)

// volumetricDefaults lets a file without a volumetric block run the stage:
// 50 requests a second per client, bursts of 100, generous for a person
// with a browser (a page and its assets) and far below what a flood sends.
func volumetricDefaults(c *volumetric.Config) {
	if c.Rate.IsZero() {
		c.Rate = filters.Rate{Count: 50, Period: time.Second}
		if c.Burst == 0 {
			c.Burst = 100
		}
	}
}

// StageConfig is a stage's settings block: the stage's own Config type, the
// one struct that serves the file, the Go API and the Caddy JSON.
type StageConfig interface {
	// Validate checks the block without building anything; each problem is
	// a *filters.FieldError named relative to the block.
	Validate() error
	// Build makes the stage from the block; env.Previous is the instance
	// it replaces on a reload, or nil.
	Build(env filters.Env) (filters.Filter, error)
}

// Entry describes a stage whose settings block is a T. StageOf turns it
// into a table entry.
type Entry[T StageConfig] struct {
	// Name names the stage in stages:, keys its block at the top of the
	// file and under route_stages, and is its filter's Name.
	Name string
	// Mode reads a block's mode: block, shadow or off.
	Mode func(T) filters.Mode
	// Field is where the top-level block lives in a Config, for Go code to
	// read and set it typed (cfg.WAF). Nil keeps it in Config.Extra under
	// Name.
	Field func(*Config) *T
	// Defaults fills in what a file's top-level block leaves out, before
	// route blocks are laid over it and before Validate. Nil: the block's
	// zero values stand (its Build applies its own defaults).
	Defaults func(*T)
	// PerRoute lets route_stages override the stage. A route's block is
	// laid over the top-level one key by key: what it sets replaces, what
	// it leaves out is inherited; the route then runs an instance of its
	// own.
	PerRoute bool
	// RouteField is where a route's block lives in RouteStages (nil there
	// when the route sets none). Nil keeps it in RouteStages.Extra.
	RouteField func(*RouteStages) **T
}

// Stage is one entry of the stage table, made by StageOf.
type Stage struct {
	name     string
	perRoute bool
	typ      reflect.Type
	typed    bool // the top-level block has a field of its own in Config
	mode     func(StageConfig) filters.Mode
	top      func(*Config) StageConfig
	defaults func(*Config)                  // fills in the top-level block's defaults
	route    func(*RouteStages) StageConfig // nil when the route sets none
	// decodeExtra decodes the top-level block of a stage kept in Extra.
	decodeExtra func(c *Config, root ast.Node) error
	// layRoute decodes a route's block over a copy of the top-level one.
	layRoute func(c *Config, rs *RouteStages, block ast.Node) error
}

// StageOf makes the table entry of the stage e describes.
func StageOf[T StageConfig](e Entry[T]) Stage {
	top := func(c *Config) T {
		if e.Field != nil {
			return *e.Field(c)
		}
		v, _ := c.Extra[e.Name].(T) // Validate refuses a block of another type
		return v
	}
	s := Stage{name: e.Name, perRoute: e.PerRoute, typ: reflect.TypeFor[T](), typed: e.Field != nil}
	s.mode = func(b StageConfig) filters.Mode { return e.Mode(b.(T)) }
	s.top = func(c *Config) StageConfig { return top(c) }
	s.defaults = func(c *Config) {
		if e.Defaults == nil {
			return
		}
		if e.Field != nil {
			e.Defaults(e.Field(c))
			return
		}
		if v, ok := c.Extra[e.Name].(T); ok {
			e.Defaults(&v)
			c.Extra[e.Name] = v
		}
	}
	s.route = func(rs *RouteStages) StageConfig {
		switch {
		case !e.PerRoute:
		case e.RouteField != nil:
			if p := *e.RouteField(rs); p != nil {
				return *p
			}
		default:
			if v, ok := rs.Extra[e.Name].(T); ok {
				return v
			}
		}
		return nil
	}
	s.decodeExtra = func(c *Config, root ast.Node) error {
		node := child(root, e.Name)
		if e.Field != nil || node == nil {
			return nil
		}
		var v T
		if err := decodeBlock(node, &v, e.Name); err != nil {
			return err
		}
		if c.Extra == nil {
			c.Extra = map[string]StageConfig{}
		}
		c.Extra[e.Name] = v
		return nil
	}
	s.layRoute = func(c *Config, rs *RouteStages, block ast.Node) error {
		if !e.PerRoute {
			return nil
		}
		if e.RouteField != nil {
			// The decoder has set the field when the route names the stage.
			p := e.RouteField(rs)
			if *p == nil {
				return nil
			}
			v, err := layOver(top(c), block, e.Name)
			if err != nil {
				return err
			}
			*p = v
			return nil
		}
		if _, ok := unwrap(block).(*ast.AliasNode); ok {
			// The decoder skipped this stage's key; an alias hides
			// whether the block has one.
			return fmt.Errorf("write the block out in full (aliases are not supported where registered stages may be set)")
		}
		if child(block, e.Name) == nil {
			return nil
		}
		v, err := layOver(top(c), block, e.Name)
		if err != nil {
			return err
		}
		if rs.Extra == nil {
			rs.Extra = map[string]StageConfig{}
		}
		rs.Extra[e.Name] = *v
		return nil
	}
	return s
}

// Name is the stage's name in stages: and its block's key.
func (s Stage) Name() string { return s.name }

// PerRoute reports whether route_stages may override the stage.
func (s Stage) PerRoute() bool { return s.perRoute }

// Settings returns the block route runs the stage with, and its mode: the
// route's own when route_stages sets one, the top-level block otherwise
// (route "" is the shared chain's).
func (s Stage) Settings(c *Config, route string) (StageConfig, filters.Mode) {
	if route != "" {
		rs := c.RouteStages[route]
		if b := s.route(&rs); b != nil {
			return b, s.mode(b)
		}
	}
	b := s.top(c)
	return b, s.mode(b)
}

// Overrides reports whether rs sets the stage for its route.
func (s Stage) Overrides(rs RouteStages) bool { return s.route(&rs) != nil }

// Register adds a stage to the table, after the built-in ones. Call it from
// an init function, before any config is parsed. A name already taken, by
// a stage or by another key of the file, panics: the file could not tell
// the two apart.
func Register(s Stage) {
	tableMu.Lock()
	defer tableMu.Unlock()
	if s.name == "" || s.top == nil {
		panic("config: Register: a stage needs a name and a block (make it with StageOf)")
	}
	if slices.ContainsFunc(table, func(t Stage) bool { return t.name == s.name }) {
		panic(fmt.Sprintf("config: Register: stage %q is already registered", s.name))
	}
	if !s.typed && slices.Contains(topLevelKeys(), s.name) {
		panic(fmt.Sprintf("config: Register: %q is already a key of the config file", s.name))
	}
	table = append(table, s)
}

// Stages returns the stage table in order: the built-in stages, then the
// registered ones.
func Stages() []Stage {
	tableMu.RLock()
	defer tableMu.RUnlock()
	return slices.Clone(table)
}

// StageNames are the stages a chain may name, in table order.
func StageNames() []string {
	var names []string
	for _, s := range Stages() {
		names = append(names, s.name)
	}
	return names
}

// LookupStage returns the table entry named name.
func LookupStage(name string) (Stage, bool) {
	for _, s := range Stages() {
		if s.name == name {
			return s, true
		}
	}
	return Stage{}, false
}

// extraStages are the stages whose top-level block lives in Config.Extra:
// the decoder leaves their keys to the table.
func extraStages() []Stage {
	var out []Stage
	for _, s := range Stages() {
		if !s.typed {
			out = append(out, s)
		}
	}
	return out
}

// decodeBlock decodes one stage block strictly. An alias leaves no block
// to decode here (the walk that reports unknown keys cannot follow it).
func decodeBlock[T any](node ast.Node, v *T, key string) error {
	node = unwrap(node)
	if _, ok := node.(*ast.AliasNode); ok || node == nil {
		return fmt.Errorf("%s: write the block out in full (aliases are not supported here)", key)
	}
	return yaml.NodeToValue(node, v, yaml.DisallowUnknownField())
}

var (
	configType      = reflect.TypeFor[Config]()
	routeStagesType = reflect.TypeFor[RouteStages]()
)

// blockType is the type of the value under key in a struct of type t, for
// the walks that report unknown keys and bad values: a field's, or, at the
// top of the file and in a route's block, a registered stage's block.
func blockType(t reflect.Type, key string) (reflect.Type, bool) {
	if f, ok := fieldByTag(t, key); ok {
		return f.Type, true
	}
	if t != configType && t != routeStagesType {
		return nil, false
	}
	for _, s := range extraStages() {
		if s.name == key && (t == configType || s.perRoute) {
			return s.typ, true
		}
	}
	return nil, false
}

// topLevelKeys are the keys Config's own fields take.
func topLevelKeys() []string {
	var keys []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case strings.Contains(opts, "inline"):
				walk(f.Type)
			case name != "" && name != "-":
				keys = append(keys, name)
			}
		}
	}
	walk(configType)
	return keys
}

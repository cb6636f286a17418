package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/internal/httpkit"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Problem is one thing wrong with a config file, at a line of it.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// Error lists every problem found in a config file, one per line, each as
// FILE:LINE: message.
type Error struct {
	Problems []Problem
	draft    *Config // what Parse could read despite the problems; see Draft
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads and parses the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes data, named name in errors, strictly: unknown keys, values
// of the wrong form and invalid settings are all reported, each with its
// line. Defaults are applied to what the file leaves out. A file with
// problems has the files its refused stage blocks name read too (relative
// to name's directory), since a draft does not build those blocks.
func Parse(name string, data []byte) (cfg *Config, err error) {
	// A config is read on every SIGHUP by a process that must keep
	// serving: whatever the YAML library does with odd input, a bad file
	// is a refused file, never a crash.
	defer func() {
		if p := recover(); p != nil {
			cfg, err = nil, &Error{Problems: []Problem{{File: name, Line: 1, Msg: fmt.Sprintf("cannot decode this file: %v", p)}}}
		}
	}()
	problems := func(ps ...Problem) error { return &Error{Problems: ps} }
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, problems(Problem{File: name, Line: errLine(err), Msg: errMessage(err)})
	}
	var root ast.Node
	if len(file.Docs) > 0 {
		root = file.Docs[0].Body
	}
	if len(file.Docs) > 1 {
		line := file.Docs[1].GetToken().Position.Line
		if start := file.Docs[1].Start; start != nil {
			line = start.Position.Line
		}
		return nil, problems(Problem{File: name, Line: line, Msg: "only one YAML document is allowed"})
	}

	var found []Problem
	var refused []string // fields with a problem: a draft does not build them
	add := func(field string, line int, msg string) int {
		found = append(found, Problem{File: name, Line: line, Msg: msg})
		refused = append(refused, field)
		return len(found) - 1
	}
	bad, ints := walk(root, add)
	// done reports what was found; draft is the file as far as it could be
	// read, for a checker that builds its sound parts (Error.Draft).
	done := func(draft *Config) (*Config, error) {
		if draft != nil {
			draft.src.refused = refused
		}
		slices.SortStableFunc(found, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &Error{Problems: found, draft: draft}
	}

	// A decoding error after the walk found problems is most likely one
	// of them again, in the decoder's words: report it only when it is
	// the first.
	decodeFailed := func(line int, err error) (*Config, error) {
		if len(found) == 0 {
			add("", line, errMessage(err))
		}
		return done(nil)
	}
	cfg = &Config{src: &source{name: name, root: root}}
	if root != nil && root.Type() != ast.NullType {
		if err := decode(data, root, cfg, len(found) > 0); err != nil {
			return decodeFailed(errLine(err), err)
		}
		for _, s := range extraStages() {
			if err := s.decodeExtra(cfg, root); err != nil {
				return decodeFailed(blockErrLine(root, s.name, err), err)
			}
		}
	}
	cfg.placeState(os.Getenv)
	cfg.applyDefaults(child(root, quota.Name) != nil)
	if err := cfg.layRouteStages(root); err != nil {
		return decodeFailed(errLine(err), err)
	}
	// A word where a number goes: say which numbers, as validation has
	// them (before validation below reports the field again as unset).
	for _, ip := range ints {
		found[ip.at].Msg = pathPrefix(ip.field) + ip.kind.withRange(cfg.intRange(ip.field)).Error()
	}
	cfg.validateInto(root, bad, add)
	if len(found) > 0 {
		// The blocks refused above are not built from the draft: the
		// files they name are checked here, in the same run.
		cfg.src.refused = refused
		for _, fe := range filters.FieldErrors(cfg.refusedFiles(filepath.Dir(name))) {
			add(fe.Field, fieldLine(root, fe.Field), fe.Error())
		}
		return done(cfg)
	}
	return cfg, nil
}

// validateInto reports through add, each at its line, what validation
// finds wrong with c, but for the values in bad: those were refused before
// decoding and are unset now, and validation would only repeat them.
func (c *Config) validateInto(root ast.Node, bad []string, add func(field string, line int, msg string) int) {
	for _, fe := range filters.FieldErrors(errors.Join(c.Validate(), c.ValidateEdge())) {
		switch {
		case overlaps(fe.Field, bad):
		case fe.Field == "":
			add("", lineOf(root, ""), fe.Err.Error())
		default:
			add(fe.Field, fieldLine(root, fe.Field), fe.Error())
		}
	}
}

// walk reports through add every key of the document that the types have
// no field for and every value that cannot land where it is, all at once
// (the decoder stops at the first). It returns the paths of the bad
// values, which are nulled in the tree so that the rest decodes, and the
// words found where integers go, whose messages Parse completes with the
// range once the file is decoded.
func walk(root ast.Node, add func(field string, line int, msg string) int) (bad []string, ints []intProblem) {
	unknownKeys(root, configType, "", func(path string, line int, err error) {
		add(path, line, pathPrefix(path)+err.Error())
	})
	valueErrors(root, configType, "", func(path string, line int, err error) {
		path = strings.TrimPrefix(path, ".")
		bad = append(bad, path)
		msg := err.Error() // the whole document is of the wrong kind
		if path != "" {
			// Said as validation says a field's problem: the path, then
			// the text without a sentinel's package name (FieldError).
			msg = (&filters.FieldError{Field: path, Err: err}).Error()
		}
		at := add(path, line, msg)
		var ke *kindErr
		if errors.As(err, &ke) && ke.integer {
			ints = append(ints, intProblem{at: at, field: path, kind: ke})
		}
	})
	return bad, ints
}

// decode decodes the document into cfg. A file with problems already
// reported has had its bad values nulled in root and its unknown keys
// reported: it is decoded from the tree, leniently, so that validation can
// still look at everything else.
func decode(data []byte, root ast.Node, cfg *Config, reported bool) error {
	if !reported {
		return yaml.UnmarshalWithOptions(data, cfg, decodeOptions()...)
	}
	var opts []yaml.DecodeOption
	for _, s := range extraStages() {
		opts = append(opts, yaml.AllowFieldPrefixes(s.name))
	}
	return yaml.NodeToValue(root, cfg, opts...)
}

// overlaps reports whether field is one of paths, inside one, or holds one.
func overlaps(field string, paths []string) bool {
	for _, p := range paths {
		if within(field, p) || within(p, field) {
			return true
		}
	}
	return false
}

// within reports whether path is base or below it.
func within(path, base string) bool {
	if !strings.HasPrefix(path, base) {
		return false
	}
	rest := path[len(base):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// fieldLine is the line of a field for a validation problem. A stage that
// the chain names but the file does not configure is reported where the
// chain is named.
func fieldLine(root ast.Node, field string) int {
	top := splitPath(field)
	if len(top) > 0 && child(root, top[0]) == nil && slices.Contains(StageNames(), top[0]) {
		return lineOf(root, "stages")
	}
	return lineOf(root, field)
}

// decodeOptions are the decoder's: strict, except for the blocks of stages
// kept in Config.Extra, which the table decodes itself. The walk before
// the decoder has already reported every key that is neither.
func decodeOptions() []yaml.DecodeOption {
	opts := []yaml.DecodeOption{yaml.DisallowUnknownField()}
	for _, s := range extraStages() {
		opts = append(opts, yaml.AllowFieldPrefixes(s.name))
	}
	return opts
}

// blockErrLine is the line of an error decoding the block under key: the
// decoder's when it has one, the block's otherwise.
func blockErrLine(root ast.Node, key string, err error) int {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		return ye.GetToken().Position.Line
	}
	return lineOf(root, key)
}

func pathPrefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func errLine(err error) int {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		return ye.GetToken().Position.Line
	}
	return 1
}

func errMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		return ye.GetMessage()
	}
	return err.Error()
}

// unknownKeys reports every key the type has no field for, everywhere in
// the document at once (the decoder stops at the first).
func unknownKeys(node ast.Node, t reflect.Type, path string, report func(path string, line int, err error)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	node = unwrap(node)
	if node == nil || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		eachPair(node, func(key string, value ast.Node) {
			ft, ok := blockType(t, key)
			if !ok {
				report(path, keyLine(node, key), fmt.Errorf("unknown key %q", key))
				return
			}
			unknownKeys(value, ft, join(path, key), report)
		})
	case reflect.Map:
		eachPair(node, func(key string, value ast.Node) {
			unknownKeys(value, t.Elem(), join(path, key), report)
		})
	case reflect.Slice, reflect.Array:
		if seq, ok := node.(*ast.SequenceNode); ok {
			for i, v := range seq.Values {
				unknownKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), report)
			}
		}
	}
}

func keyLine(node ast.Node, key string) int {
	line := node.GetToken().Position.Line
	eachPairKey(node, func(k ast.MapKeyNode) {
		if keyName(k) == key {
			line = k.GetToken().Position.Line
		}
	})
	return line
}

func eachPairKey(node ast.Node, fn func(ast.MapKeyNode)) {
	switch n := node.(type) {
	case *ast.MappingNode:
		for _, kv := range n.Values {
			fn(kv.Key)
		}
	case *ast.MappingValueNode:
		fn(n.Key)
	}
}

// applyDefaults fills in what the file leaves out. hasQuota says whether
// the file has a quota block: without one the default chain leaves the
// quota stage out, since no quota fits every API (see DefaultStages).
func (c *Config) applyDefaults(hasQuota bool) {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Stages == nil {
		c.Stages = slices.Clone(DefaultStages)
		if !hasQuota {
			c.Stages = slices.DeleteFunc(c.Stages, func(s string) bool { return s == quota.Name })
		}
	}
	for _, st := range Stages() {
		st.defaults(c)
	}
	s := &c.Server
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = filters.Duration(10e9)
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = filters.Duration(120e9)
	}
	if s.ClientBodyTimeout == 0 {
		s.ClientBodyTimeout = filters.Duration(60e9)
	}
	if s.SendTimeout == 0 {
		s.SendTimeout = filters.Duration(60e9)
	}
	if s.MaxBodyMemory == 0 {
		s.MaxBodyMemory = 256 << 20
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	}
	if s.ShutdownTimeout == 0 {
		s.ShutdownTimeout = filters.Duration(30e9)
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:9090"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	a := &c.Log.Access
	if a.Format == "" {
		a.Format = "json"
	}
	if a.Sample == 0 {
		a.Sample = 1
	}
	if a.Redact == nil {
		a.Redact = slices.Clone(DefaultRedact)
	}
}

// layRouteStages decodes each route's stage blocks again, this time over a
// copy of the top-level block, so that what a route leaves out it inherits.
func (c *Config) layRouteStages(root ast.Node) error {
	stages := Stages()
	for route, rs := range c.RouteStages {
		block := child(child(root, "route_stages"), route)
		for _, s := range stages {
			if err := s.layRoute(c, &rs, block); err != nil {
				return fmt.Errorf("route_stages.%s: %w", route, err)
			}
		}
		c.RouteStages[route] = rs
	}
	return nil
}

// layOver decodes the stage block under key of a route's block over a copy
// of base, so that what the route leaves out it inherits.
func layOver[T any](base T, block ast.Node, key string) (*T, error) {
	node := unwrap(child(block, key))
	if node == nil {
		// Anchors and aliases decode, but leave no block to lay over.
		return nil, fmt.Errorf("%s: write the block out in full (aliases are not supported here)", key)
	}
	v := base
	if err := yaml.NodeToValue(node, &v, yaml.DisallowUnknownField()); err != nil {
		return nil, err
	}
	return &v, nil
}

// Validate checks what the filter chain needs (the stages, the client-IP
// rule, forwarding and route overrides), each block with its own Validate;
// every problem is a *filters.FieldError whose Field is the path from the
// top of the file. The binary's own keys (listen, tls, admin, log) are
// ValidateEdge's: middleware has no listener and no log of its own.
func (c *Config) Validate() error {
	var errs []error
	sub := func(prefix string, err error) {
		if err != nil {
			errs = append(errs, filters.PrefixFields(prefix, err))
		}
	}
	if c.Stages == nil {
		// Parse fills it in; a Config built in code that leaves it out
		// would otherwise run no stage at all, silently.
		errs = append(errs, filters.FieldErrorf("stages", "not set: name the stages to run, or start from edgeguard.DefaultConfig()"))
	}
	errs = append(errs, c.validateChain())
	sub("client_ip", c.ClientIP.Validate())
	errs = append(errs, c.validateBlocks())
	// A config used only as middleware (edgeguard.New(...).Wrap) forwards
	// nowhere; the binary requires an upstream before it serves.
	if c.Forward.Upstream != "" || len(c.Forward.Upstreams) > 0 || len(c.Forward.Routes) > 0 {
		sub("", c.Forward.Validate())
	}
	errs = append(errs, c.validateRouteCaps())
	errs = append(errs, c.validateRouteStages())
	return errors.Join(errs...)
}

// ValidateEdge checks the keys only the binary reads: the listeners and
// the log. Parse checks them beside Validate's.
func (c *Config) ValidateEdge() error {
	var errs []error
	field := func(f, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(f, format, args...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		field("listen", "%q is not host:port", c.Listen)
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, filters.PrefixFields("tls", err))
	}
	if _, _, err := net.SplitHostPort(c.Auth.Listen); c.Auth.Listen != "" && err != nil {
		field("auth.listen", "%q is not host:port", c.Auth.Listen)
	}
	if c.Admin.Listen != "off" {
		host, _, err := net.SplitHostPort(c.Admin.Listen)
		if err != nil {
			field("admin.listen", "%q is not host:port (or off)", c.Admin.Listen)
		} else if !isLoopback(host) && c.Admin.Token == "" {
			field("admin.listen", "%q is not a loopback address: set admin.token, or the ban and metrics API would be open to the network", c.Admin.Listen)
		}
	}
	for name, d := range map[string]filters.Duration{"server.client_body_timeout": c.Server.ClientBodyTimeout, "server.send_timeout": c.Server.SendTimeout} {
		if d < 0 {
			field(name, "%v: must be positive", d.D())
		}
	}
	if c.Server.MaxBodyMemory < 0 {
		field("server.max_body_memory", "%d: must be positive", c.Server.MaxBodyMemory)
	}
	for i, o := range c.Admin.AllowedOrigins {
		if _, err := httpkit.ParseOrigin(o); err != nil {
			errs = append(errs, &filters.FieldError{Field: fmt.Sprintf("admin.allowed_origins[%d]", i), Err: err})
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		field("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		field("log.format", "%q: want json or text", c.Log.Format)
	}
	if f := c.Log.Access.Format; f != "" && f != "json" && f != "combined" {
		field("log.access.format", "%q: want json or combined", f)
	}
	if s := c.Log.Access.Sample; s < 0 || s > 1 {
		field("log.access.sample", "%v: want a share above 0 and at most 1 (0.01 logs one request in a hundred)", s)
	}
	return errors.Join(errs...)
}

// validateChain checks the names of stages: each one in the table, once.
func (c *Config) validateChain() error {
	var errs []error
	names := StageNames()
	seen := map[string]bool{}
	for i, s := range c.Stages {
		switch {
		case !slices.Contains(names, s):
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("stages[%d]", i), "unknown stage %q (want one of %s)", s, strings.Join(names, ", ")))
		case seen[s]:
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("stages[%d]", i), "stage %q named twice", s))
		}
		seen[s] = true
	}
	return errors.Join(errs...)
}

// validateBlocks checks the top-level block of every stage the chain runs,
// in table order, each with its own Validate.
func (c *Config) validateBlocks() error {
	var errs []error
	// A stage is checked when the chain runs it; a block for a stage that
	// is left out of the chain is decoded (unknown keys and bad values are
	// still errors) but its settings are not required to be complete.
	for _, s := range Stages() {
		if slices.Contains(c.Stages, s.name) {
			errs = append(errs, filters.PrefixFields(s.name, s.top(c).Validate()))
		}
	}
	for name, b := range c.Extra {
		errs = append(errs, checkExtra(name, name, b, false))
	}
	return errors.Join(errs...)
}

// validateRouteStages checks that each route_stages entry names a route,
// and each block it sets, in table order.
func (c *Config) validateRouteStages() error {
	var errs []error
	routes := map[string]bool{}
	for _, r := range c.Forward.Routes {
		routes[r.RouteName()] = true
	}
	stages := Stages()
	for name, rs := range c.RouteStages {
		f := "route_stages." + name
		if !routes[name] {
			errs = append(errs, filters.FieldErrorf(f, "no route is named %q", name))
		}
		for _, s := range stages {
			if b := s.route(&rs); b != nil {
				errs = append(errs, filters.PrefixFields(f+"."+s.name, b.Validate()))
			}
		}
		for stage, b := range rs.Extra {
			errs = append(errs, checkExtra(f+"."+stage, stage, b, true))
		}
	}
	return errors.Join(errs...)
}

// validateRouteCaps refuses a fleet-wide route cap (store: redis, the
// default) that nothing would share: without the quota stage's Redis store
// the forwarder could only count it in each node's memory, and a fleet of
// ten would quietly pass ten caps.
func (c *Config) validateRouteCaps() error {
	if slices.Contains(c.Stages, "quota") && c.Quota.Mode != filters.ModeOff && c.Quota.Store == quota.StoreRedis {
		return nil
	}
	var errs []error
	for i, r := range c.Forward.Routes {
		if cp := r.Shield.Cap; !cp.Rate.IsZero() && cp.Store.Fleet() && cp.Store.Validate() == nil {
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("routes[%d].shield.cap.store", i),
				"a fleet-wide cap (store: redis, the default) is counted in the quota stage's Redis, and the quota stage does not run with store: redis here: enable it, or set store: memory to cap each node on its own"))
		}
	}
	return errors.Join(errs...)
}

// checkExtra checks that an Extra entry, set from Go code, belongs to a
// stage kept there and is a block of its type: a block the table cannot
// find would otherwise leave its stage running with zero settings.
func checkExtra(field, stage string, b StageConfig, route bool) error {
	s, ok := LookupStage(stage)
	switch {
	case !ok || s.typed:
		return filters.FieldErrorf(field, "no registered stage keeps its block in Extra under this name")
	case route && !s.perRoute:
		return filters.FieldErrorf(field, "stage %q cannot be set per route", stage)
	case reflect.TypeOf(b) != s.typ:
		return filters.FieldErrorf(field, "block of type %T, want %s", b, s.typ)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

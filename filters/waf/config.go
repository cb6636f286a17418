package waf

import (
	"errors"
	"fmt"
	"mime"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// Defaults the zero value of Config stands for.
const (
	DefaultParanoia          = 1
	DefaultInboundThreshold  = 5
	DefaultOutboundThreshold = 4
	DefaultBodyLimit         = filters.Size(1 << 20)
	DefaultMaxArguments      = 1000
	DefaultResponseLimit     = filters.Size(512 << 10)

	DefaultLargeBodyThreshold = filters.Size(64 << 10)
	DefaultQueueTimeout       = filters.Duration(time.Second)
	// defaultQueuePerSlot and defaultLargeQueuePerSlot size the waiting
	// rooms from the lanes' limits when queue and large_body_queue are zero.
	defaultQueuePerSlot      = 64
	defaultLargeQueuePerSlot = 2
)

// DefaultResponseMIMETypes are the response types inspected when
// inspect_response is on and response_mime_types is empty: the types CRS's
// outbound rules (error pages, directory listings, stack traces) are written for.
var DefaultResponseMIMETypes = []string{"text/html", "text/plain", "text/xml"}

// Body limit actions.
const (
	// BodyLimitReject answers 413 to a request whose body is over the limit.
	BodyLimitReject = "reject"
	// BodyLimitPartial inspects the first body_limit bytes and forwards the
	// whole body.
	BodyLimitPartial = "partial"
)

// Config is the waf: block of the configuration file.
type Config struct {
	// Mode is block (enforce CRS's decisions), shadow (evaluate every rule as
	// CRS's DetectionOnly does, log what would have been denied, allow) or
	// off (the stage is not built into the chain). Empty means block.
	Mode filters.Mode `yaml:"mode" json:"mode"`

	// Profile is the kind of traffic behind this block: web (browsers and
	// HTML forms), api (REST and JSON: PUT, PATCH, DELETE and the JSON
	// content types allowed) or graphql (api, plus GraphQL query documents
	// in ARGS:json.query exempt from the rules their syntax sets off). It
	// sets the variables CRS leaves to the operator (allowed methods,
	// content types, restricted extensions, argument limits) and turns on
	// the profile's narrow exclusions; the SecLang is in rules/profile-NAME,
	// compiled into the binary. Empty means stock CRS. api and graphql
	// require body_limit_action reject.
	Profile Profile `yaml:"profile" json:"profile"`

	// TextFields are the arguments that hold free text (markdown, code
	// snippets, prose), named as Coraza names them: json.note for the top
	// level JSON key note, json.post.body for a nested one, note for a form
	// field. Each is exempt from the command-injection and SQL rules that
	// ordinary prose about code sets off (the list and the reasons are in
	// profile.go, textFieldRules), on this route only; every other rule,
	// XSS included, still reads it. Put it in route_stages to limit it to
	// the route whose payload has the field.
	TextFields []string `yaml:"text_fields" json:"text_fields"`

	// Paranoia is the CRS paranoia level, 1 to 4: higher levels run more
	// rules, catch more attacks and raise more false positives. Zero means 1.
	Paranoia int `yaml:"paranoia" json:"paranoia"`

	// InboundThreshold is the request anomaly score at which CRS blocks
	// (a critical match scores 5, an error 4, a warning 3, a notice 2).
	// Zero means 5: one critical match is enough.
	InboundThreshold int `yaml:"inbound_threshold" json:"inbound_threshold"`

	// OutboundThreshold is the response anomaly score at which CRS blocks,
	// used only when inspect_response is on. Zero means 4.
	OutboundThreshold int `yaml:"outbound_threshold" json:"outbound_threshold"`

	// BodyLimit is how many bytes of a request body are read and inspected,
	// held in memory while CRS runs. Zero means 1MiB.
	BodyLimit filters.Size `yaml:"body_limit" json:"body_limit"`

	// BodyLimitAction says what happens to a body over body_limit: reject
	// answers 413 without forwarding it; partial inspects the first
	// body_limit bytes and forwards the whole body. Empty means reject.
	BodyLimitAction string `yaml:"body_limit_action" json:"body_limit_action"`

	// EarlyBlocking also evaluates CRS's anomaly score at the end of the
	// header phase (after the packs' header-phase rules), so a request
	// already over the threshold on its request line and headers (a
	// scanner, a protocol violation) is refused before its body is read and
	// parsed. It changes no allow/deny decision, only how much work a
	// doomed request costs (measured: a scanner posting 8 KB of JSON,
	// 132 ms -> 0.14 ms). Nil means true.
	EarlyBlocking *bool `yaml:"early_blocking" json:"early_blocking"`

	// MaxArguments is how many arguments (query, path and body: form fields,
	// JSON leaves, XML nodes) Coraza parses. A request with more is refused
	// with 400 (rules 200004/200005): arguments past the limit would go
	// uninspected. Each argument costs 0.2 to 0.3 ms of CRS time at
	// paranoia 1. Zero means 1000.
	MaxArguments int `yaml:"max_arguments" json:"max_arguments"`

	// InspectResponse runs CRS's response phases (headers, then the body
	// for the types in response_mime_types) before the response reaches the
	// client. Inspected bodies are held back until they are complete or
	// reach response_body_limit, even when the upstream flushes (types not
	// in the list, such as text/event-stream, stream as they come), so keep
	// streamed responses of the listed types out of it. Default false.
	InspectResponse bool `yaml:"inspect_response" json:"inspect_response"`

	// ResponseMIMETypes are the response content types whose bodies are
	// inspected when inspect_response is on (media type only, no
	// parameters). Empty means text/html, text/plain and text/xml.
	ResponseMIMETypes []string `yaml:"response_mime_types" json:"response_mime_types"`

	// ResponseBodyLimit is how many bytes of an inspected response body are
	// held and inspected; the rest is passed on uninspected. Zero means 512KiB.
	ResponseBodyLimit filters.Size `yaml:"response_body_limit" json:"response_body_limit"`

	// Packs are rule pack directories (pack.yaml, *.conf, tests/), loaded
	// after CRS in the order given. Relative paths are resolved against the
	// config file's directory.
	Packs []string `yaml:"packs" json:"packs"`

	// Exclusions switch CRS rules off for the requests whose path starts
	// with a prefix: the standard answer to a false positive that one
	// endpoint causes.
	Exclusions []Exclusion `yaml:"exclusions" json:"exclusions"`

	// SkipBodyPaths are path prefixes (matched like exclusion paths, and
	// like them only on a canonical path) whose request bodies are not read
	// (upload endpoints): headers and query are still inspected and the body
	// streams to the upstream untouched.
	SkipBodyPaths []string `yaml:"skip_body_paths" json:"skip_body_paths"`

	// MaxConcurrent is how many requests CRS evaluates at once, bodies up
	// to large_body_threshold (the small lane). Evaluation is pure CPU, so
	// more than one per core only adds latency. Zero means GOMAXPROCS (the
	// cores the process may use). A request refused for want of a slot is
	// answered 503 (in shadow mode: forwarded uninspected and reported as
	// the 503 it would have been).
	MaxConcurrent int `yaml:"max_concurrent" json:"max_concurrent"`

	// Queue is how many small-lane requests may wait for an evaluation slot
	// when all max_concurrent are busy, first come first served; a request
	// beyond it is answered 503 with Retry-After at once. Zero means 64 per
	// slot: a waiting request holds its body (at most large_body_threshold)
	// and is still bounded in time by queue_timeout.
	Queue int `yaml:"queue" json:"queue"`

	// QueueTimeout is the longest a request waits in either lane's queue;
	// then it is answered 503 with Retry-After. Zero means 1s.
	QueueTimeout filters.Duration `yaml:"queue_timeout" json:"queue_timeout"`

	// LargeBodyThreshold is the body size (by Content-Length, or by the
	// bytes read when there is none) above which a request is evaluated in
	// the large-body lane: CRS's cost grows with the body (a 1 MB string
	// costs seconds of CPU with stock regexps), and the lane keeps such
	// bodies from taking the slots small requests need. Zero means 64KiB.
	LargeBodyThreshold filters.Size `yaml:"large_body_threshold" json:"large_body_threshold"`

	// LargeBodyConcurrent is how many large-body evaluations run at once,
	// besides max_concurrent. Zero means a quarter of GOMAXPROCS, at least 1.
	LargeBodyConcurrent int `yaml:"large_body_concurrent" json:"large_body_concurrent"`

	// LargeBodyQueue is how many large-body requests may wait for a slot.
	// Zero means 2 per slot.
	LargeBodyQueue int `yaml:"large_body_queue" json:"large_body_queue"`

	// Audit is where audit events (one JSON object per denied or
	// shadow-denied request) go: empty means the main log; otherwise a file
	// path, appended to, relative to the config file's directory.
	Audit string `yaml:"audit" json:"audit"`

	// AuditRequests adds each audited request itself (request line,
	// headers without Authorization, Proxy-Authorization and Cookie, the
	// inspected body) to its audit event, for `edgeguard tune` to make
	// tests from. Meant for a shadow tuning run: bodies may hold personal
	// data. Default false.
	AuditRequests bool `yaml:"audit_requests" json:"audit_requests"`
}

// Exclusion removes rules for one path prefix.
type Exclusion struct {
	// Path is the path prefix the exclusion applies to, on segment
	// boundaries: "/api/editor" covers /api/editor and /api/editor/7, not
	// /api/editorial. It applies only to a canonical request path (no
	// percent-encoding that decodes to something else, such as %2F, and no
	// //, . or .. segment), because the upstream may read any other path
	// differently: /x/../api/editor and /x/..%2Fapi/editor get no
	// exclusions. "/" applies everywhere, however the path is spelled.
	Path string `yaml:"path" json:"path"`
	// RuleIDs are the CRS or pack rule ids not to run for these requests.
	RuleIDs []int `yaml:"rule_ids" json:"rule_ids"`
	// Tags remove every rule carrying one of these tags
	// ("attack-sqli", "paranoia-level/2").
	Tags []string `yaml:"tags" json:"tags"`
}

// Validate checks the config without touching the file system or building
// anything; each problem is a *filters.FieldError.
func (c Config) Validate() error {
	var errs []error
	if err := c.Mode.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Paranoia < 0 || c.Paranoia > 4 {
		errs = append(errs, filters.FieldErrorf("paranoia", "%d: want 1 to 4", c.Paranoia))
	}
	if c.InboundThreshold < 0 {
		errs = append(errs, filters.FieldErrorf("inbound_threshold", "%d: must not be negative", c.InboundThreshold))
	}
	if c.OutboundThreshold < 0 {
		errs = append(errs, filters.FieldErrorf("outbound_threshold", "%d: must not be negative", c.OutboundThreshold))
	}
	if c.MaxArguments < 0 {
		errs = append(errs, filters.FieldErrorf("max_arguments", "%d: must not be negative", c.MaxArguments))
	}
	for _, n := range []struct {
		field string
		v     int
	}{{"max_concurrent", c.MaxConcurrent}, {"queue", c.Queue}, {"large_body_concurrent", c.LargeBodyConcurrent}, {"large_body_queue", c.LargeBodyQueue}} {
		if n.v < 0 {
			errs = append(errs, filters.FieldErrorf(n.field, "%d: must not be negative", n.v))
		}
	}
	if c.QueueTimeout < 0 {
		errs = append(errs, filters.FieldErrorf("queue_timeout", "must not be negative"))
	}
	if c.LargeBodyThreshold < 0 {
		errs = append(errs, filters.FieldErrorf("large_body_threshold", "must not be negative"))
	}
	if c.BodyLimit < 0 {
		errs = append(errs, filters.FieldErrorf("body_limit", "must not be negative"))
	}
	if c.ResponseBodyLimit < 0 {
		errs = append(errs, filters.FieldErrorf("response_body_limit", "must not be negative"))
	}
	if err := c.Profile.Validate(); err != nil {
		errs = append(errs, &filters.FieldError{Field: "profile", Err: err})
	}
	for i, f := range c.TextFields {
		if !textFieldName.MatchString(f) {
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("text_fields[%d]", i), "%q: want an argument name like json.note (letters, digits, _ . -)", f))
		}
	}
	switch c.BodyLimitAction {
	case "", BodyLimitReject:
	case BodyLimitPartial:
		if c.Profile.carriesJSON() {
			// A JSON document cut at the limit does not parse: Coraza
			// refuses it (rule 200002, 400), so partial would refuse every
			// large JSON body instead of inspecting its start.
			errs = append(errs, filters.FieldErrorf("body_limit_action", "partial with profile %s: a JSON body cut at body_limit does not parse and is refused with 400; use reject (and a larger body_limit, or skip_body_paths for uploads)", c.Profile))
		}
	default:
		errs = append(errs, filters.FieldErrorf("body_limit_action", "%q: want reject or partial", c.BodyLimitAction))
	}
	for i, t := range c.ResponseMIMETypes {
		if mt, params, err := mime.ParseMediaType(t); err != nil || len(params) > 0 || mt != strings.ToLower(strings.TrimSpace(t)) {
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("response_mime_types[%d]", i), "%q: want a bare media type like text/html", t))
		}
	}
	for i, p := range c.Packs {
		if strings.TrimSpace(p) == "" {
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("packs[%d]", i), "empty path"))
		}
	}
	if len(c.Exclusions) > maxExclusions {
		errs = append(errs, filters.FieldErrorf("exclusions", "%d exclusions: at most %d", len(c.Exclusions), maxExclusions))
	}
	for i, e := range c.Exclusions {
		field := fmt.Sprintf("exclusions[%d]", i)
		if err := checkPathPrefix(e.Path); err != nil {
			errs = append(errs, &filters.FieldError{Field: field + ".path", Err: err})
		}
		if len(e.RuleIDs) == 0 && len(e.Tags) == 0 {
			errs = append(errs, filters.FieldErrorf(field, "names neither rule_ids nor tags"))
		}
		for j, id := range e.RuleIDs {
			if id <= 0 {
				errs = append(errs, filters.FieldErrorf(fmt.Sprintf("%s.rule_ids[%d]", field, j), "%d: want a positive rule id", id))
			}
		}
		for j, tag := range e.Tags {
			if tag == "" || strings.ContainsAny(tag, " \t\r\n,'\"\\") {
				errs = append(errs, filters.FieldErrorf(fmt.Sprintf("%s.tags[%d]", field, j), "%q: want a tag without spaces, commas or quotes", tag))
			}
		}
	}
	for i, p := range c.SkipBodyPaths {
		if err := checkPathPrefix(p); err != nil {
			errs = append(errs, &filters.FieldError{Field: fmt.Sprintf("skip_body_paths[%d]", i), Err: err})
		}
	}
	return errors.Join(errs...)
}

// Build makes the stage from c: New, for the stage table.
func (c Config) Build(env filters.Env) (filters.Filter, error) {
	f, err := New(c, env)
	if err != nil {
		return nil, err // not a nil *Filter inside a non-nil interface
	}
	return f, nil
}

// checkPathPrefix accepts an absolute, clean URL path usable inside a
// generated SecLang rule.
func checkPathPrefix(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q: want an absolute path starting with /", p)
	case strings.ContainsAny(p, " \t\r\n\"'\\?#%"):
		return fmt.Errorf("%q: spaces, quotes, backslashes, ?, # and %% are not allowed", p)
	case path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/":
		return fmt.Errorf("%q: want a clean path (no //, . or ..)", p)
	}
	return nil
}

// withDefaults fills every zero field with its documented default.
func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = filters.ModeBlock
	}
	if c.Paranoia == 0 {
		c.Paranoia = DefaultParanoia
	}
	if c.InboundThreshold == 0 {
		c.InboundThreshold = DefaultInboundThreshold
	}
	if c.OutboundThreshold == 0 {
		c.OutboundThreshold = DefaultOutboundThreshold
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = DefaultBodyLimit
	}
	if c.MaxArguments == 0 {
		c.MaxArguments = DefaultMaxArguments
	}
	if c.BodyLimitAction == "" {
		c.BodyLimitAction = BodyLimitReject
	}
	if len(c.ResponseMIMETypes) == 0 {
		c.ResponseMIMETypes = DefaultResponseMIMETypes
	}
	if c.ResponseBodyLimit == 0 {
		c.ResponseBodyLimit = DefaultResponseLimit
	}
	procs := runtime.GOMAXPROCS(0)
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = procs
	}
	if c.Queue == 0 {
		c.Queue = defaultQueuePerSlot * c.MaxConcurrent
	}
	if c.QueueTimeout == 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.LargeBodyThreshold == 0 {
		c.LargeBodyThreshold = DefaultLargeBodyThreshold
	}
	if c.LargeBodyConcurrent == 0 {
		c.LargeBodyConcurrent = max(1, procs/4)
	}
	if c.LargeBodyQueue == 0 {
		c.LargeBodyQueue = defaultLargeQueuePerSlot * c.LargeBodyConcurrent
	}
	return c
}

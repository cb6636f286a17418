// Package ftw reads regression tests in the go-ftw YAML format that CRS
// and its plugins write (https://github.com/coreruleset/go-ftw), builds the
// raw request of each stage and checks a stage's outcome against what the
// test expects. It knows nothing of the WAF that answers: Server serves
// any stage on 127.0.0.1 the way edgeguard does, sends each request and
// waits for the stage to report what the transaction matched.
//
// Decoding follows the published schema (github.com/coreruleset/
// ftw-tests-schema, v2.3.0) plus the legacy forms CRS files still use (a
// stage wrapped in "stage:", a list of acceptable statuses, raw_request,
// a top-level author). It is strict because a test that is not read as
// written passes without checking anything: an unknown key, a stage
// without output, a key the runner cannot honour and a regular expression
// that does not compile are all errors with FILE:LINE.
package ftw

import (
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// File is one YAML test file.
type File struct {
	Meta Meta `yaml:"meta"`
	// Author is meta.author misplaced at the top, as one of CRS's own
	// files has it (932271.yaml); accepted, it asserts nothing.
	Author string `yaml:"author"`
	RuleID int    `yaml:"rule_id"`
	Tests  []Test `yaml:"tests"`
}

// Meta describes a file. Only enabled changes what runs.
type Meta struct {
	Author      string   `yaml:"author"`
	Enabled     *bool    `yaml:"enabled"`
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Version     string   `yaml:"version"`
	Tags        []string `yaml:"tags"`
}

// Disabled reports whether the file's meta switches its tests off.
func (m Meta) Disabled() bool { return m.Enabled != nil && !*m.Enabled }

type Test struct {
	line      int
	TestTitle string   `yaml:"test_title"`
	TestID    int      `yaml:"test_id"`
	Desc      string   `yaml:"desc"`
	Stages    []Stage  `yaml:"stages"`
	Tags      []string `yaml:"tags"`
}

// Stage is one request and what is expected of it. The legacy form
// wraps both in "stage:"; decoding unwraps it.
type Stage struct {
	line        int
	Description string `yaml:"description"`
	Input       Input  `yaml:"input"`
	Output      Output `yaml:"output"`
	Stage       *Stage `yaml:"stage"`
}

// Input is the request of a stage. Where the runner has nothing to do
// for a key (the destination: it serves the stage itself), the key is
// accepted and checked for sense; keys it cannot honour are refused.
type Input struct {
	line     int
	DestAddr *string `yaml:"dest_addr"`
	Port     *int    `yaml:"port"`
	// Protocol must be http: the runner's listener is plain HTTP.
	Protocol       *string       `yaml:"protocol"`
	URI            *string       `yaml:"uri"`
	FollowRedirect bool          `yaml:"follow_redirect"`
	Version        *string       `yaml:"version"`
	Method         *string       `yaml:"method"`
	Headers        yaml.MapSlice `yaml:"headers"`
	OrderedHeaders []Header      `yaml:"ordered_headers"`
	Data           *string       `yaml:"data"`
	EncodedData    *string       `yaml:"encoded_data"`
	// SaveCookie keeps the response's cookies for the test's next stages.
	SaveCookie bool `yaml:"save_cookie"`
	// StopMagic is deprecated in go-ftw and has no effect there either.
	StopMagic           bool    `yaml:"stop_magic"`
	AutocompleteHeaders *bool   `yaml:"autocomplete_headers"`
	EncodedRequest      string  `yaml:"encoded_request"`
	RawRequest          *string `yaml:"raw_request"`
	// Response needs go-ftw's Albedo backend; refused.
	Response any `yaml:"response"`
	// VirtualHostMode sets the Host of go-ftw's log-marker requests; the
	// runner reads matches from the transaction and sends no markers.
	VirtualHostMode bool `yaml:"virtual_host_mode"`
}

// Header is one entry of ordered_headers.
type Header struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type Output struct {
	line             int
	Status           Status `yaml:"status"`
	ResponseContains string `yaml:"response_contains"`
	LogContains      string `yaml:"log_contains"`
	NoLogContains    string `yaml:"no_log_contains"`
	Log              Log    `yaml:"log"`
	ExpectError      bool   `yaml:"expect_error"`
	// RetryOnce runs a failed stage a second time (go-ftw's answer to
	// phase-5 log races; harmless here).
	RetryOnce bool `yaml:"retry_once"`
	// Isolated: the one rule of expect_ids is the only rule that matched,
	// CRS's scoring and reporting rules aside.
	Isolated bool `yaml:"isolated"`
}

type Log struct {
	ExpectIDs    []int  `yaml:"expect_ids"`
	NoExpectIDs  []int  `yaml:"no_expect_ids"`
	MatchRegex   string `yaml:"match_regex"`
	NoMatchRegex string `yaml:"no_match_regex"`
}

// Status is a status or a list of acceptable ones (older files).
type Status []int

func (s *Status) UnmarshalYAML(b []byte) error {
	var one int
	if err := yaml.Unmarshal(b, &one); err == nil {
		*s = Status{one}
		return nil
	}
	var many []int
	if err := yaml.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("status: want a number or a list of numbers: %w", err)
	}
	*s = many
	return nil
}

// The types that carry a line decode themselves: strictly, and noting
// where they start so that later checks can say FILE:LINE.

func (t *Test) UnmarshalYAML(n ast.Node) error {
	type plain Test
	return decodeAt(n, (*plain)(t), &t.line)
}

func (s *Stage) UnmarshalYAML(n ast.Node) error {
	type plain Stage
	return decodeAt(n, (*plain)(s), &s.line)
}

func (in *Input) UnmarshalYAML(n ast.Node) error {
	type plain Input
	return decodeAt(n, (*plain)(in), &in.line)
}

func (o *Output) UnmarshalYAML(n ast.Node) error {
	type plain Output
	return decodeAt(n, (*plain)(o), &o.line)
}

func decodeAt(n ast.Node, v any, line *int) error {
	if err := yaml.NodeToValue(n, v, yaml.Strict()); err != nil {
		return err
	}
	if tk := n.GetToken(); tk != nil {
		*line = tk.Position.Line
	}
	if *line == 0 {
		*line = 1
	}
	return nil
}

// ErrTest is wrapped by every error about a test file.
var ErrTest = errors.New("ftw: bad test")

// Error is a problem at a line of a test file; it wraps ErrTest.
type Error struct {
	file string
	line int
	msg  string
}

func (e *Error) Error() string {
	if e.file == "" {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
}

func (e *Error) Unwrap() error { return ErrTest }

// Decode decodes the test file name holding src and checks every test
// (checkStage); each error is FILE:LINE: message.
func Decode(name string, src []byte) (File, error) {
	var f File
	if err := yaml.UnmarshalWithOptions(src, &f, yaml.Strict()); err != nil {
		return File{}, yamlError(name, err)
	}
	if len(f.Tests) == 0 {
		if emptyYAML(src) {
			// Comments only (CRS ships such a file to satisfy its linter).
			return File{}, nil
		}
		return File{}, &Error{name, 1, "no tests"}
	}
	var errs []error
	for i := range f.Tests {
		t := &f.Tests[i]
		if len(t.Stages) == 0 {
			errs = append(errs, &Error{name, t.line, fmt.Sprintf("test %d: no stages", t.TestID)})
		}
		for j := range t.Stages {
			if err := t.Stages[j].unwrap(); err != nil {
				errs = append(errs, &Error{name, t.Stages[j].line, err.Error()})
				continue
			}
			for _, e := range t.Stages[j].check() {
				e.file = name
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return File{}, errors.Join(errs...)
	}
	return f, nil
}

// emptyYAML reports whether src holds no YAML node at all.
func emptyYAML(src []byte) bool {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return false
	}
	for _, d := range f.Docs {
		if d.Body != nil {
			return false
		}
	}
	return true
}

// yamlError turns go-yaml's error into FILE:LINE: message.
func yamlError(name string, err error) error {
	var located interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &located) && located.GetToken() != nil {
		return &Error{name, located.GetToken().Position.Line, located.GetMessage()}
	}
	return &Error{name, 1, err.Error()}
}

// unwrap lifts a legacy "stage:" wrapper into s.
func (s *Stage) unwrap() error {
	if s.Stage == nil {
		return nil
	}
	if s.Input.line != 0 || s.Output.line != 0 {
		return errors.New("stage: both the legacy stage: wrapper and input/output beside it")
	}
	if s.Stage.Stage != nil {
		return errors.New("stage: a stage: wrapper inside another")
	}
	line, desc := s.line, s.Description
	*s = *s.Stage
	s.line = line
	if desc != "" {
		s.Description = desc
	}
	return nil
}

// check refuses what would make a stage pass without checking what it
// says: a missing input or output, an output that asserts nothing, keys
// the runner cannot honour, contradictory keys, bad regexps and base64.
func (s Stage) check() []*Error {
	var errs []*Error
	add := func(line int, format string, args ...any) {
		errs = append(errs, &Error{line: line, msg: fmt.Sprintf(format, args...)})
	}
	in, out := s.Input, s.Output
	if in.line == 0 {
		add(s.line, "stage has no input")
	}
	if out.line == 0 {
		add(s.line, "stage has no output: it would check nothing")
		return errs
	}
	for _, msg := range in.problems() {
		add(in.line, "input: %s", msg)
	}
	for _, msg := range out.problems() {
		add(out.line, "output: %s", msg)
	}
	return errs
}

func (in Input) problems() []string {
	if in.line == 0 {
		return nil
	}
	var p []string
	if in.Protocol != nil && *in.Protocol != "http" {
		p = append(p, fmt.Sprintf("protocol %q: the runner speaks plain http to its own listener", *in.Protocol))
	}
	if in.Port != nil && (*in.Port < 1 || *in.Port > 65535) {
		p = append(p, fmt.Sprintf("port %d: want 1 to 65535", *in.Port))
	}
	if in.FollowRedirect {
		p = append(p, "follow_redirect is not supported: the runner sends each stage to its own listener")
	}
	if in.Response != nil {
		p = append(p, "response is not supported: it needs go-ftw's Albedo backend")
	}
	if in.Data != nil && in.EncodedData != nil {
		p = append(p, "both data and encoded_data")
	}
	if len(in.Headers) > 0 && len(in.OrderedHeaders) > 0 {
		p = append(p, "both headers and ordered_headers")
	}
	for i, h := range in.OrderedHeaders {
		if h.Name == "" {
			p = append(p, fmt.Sprintf("ordered_headers[%d]: no name", i))
		}
	}
	whole := 0
	if in.EncodedRequest != "" {
		whole++
	}
	if in.RawRequest != nil {
		whole++
	}
	if whole > 1 {
		p = append(p, "both encoded_request and raw_request")
	}
	// Method, uri and version beside a whole request describe it (CRS's
	// files do that); headers or a body would silently not be sent.
	if whole > 0 && (len(in.Headers) > 0 || len(in.OrderedHeaders) > 0 || in.Data != nil || in.EncodedData != nil) {
		p = append(p, "encoded_request/raw_request is the whole request: headers and data beside it would not be sent")
	}
	if _, err := in.body(); err != nil {
		p = append(p, err.Error())
	}
	if _, err := in.Request(); err != nil && whole > 0 {
		p = append(p, err.Error())
	}
	return p
}

func (o Output) problems() []string {
	var p []string
	l := o.Log
	for _, st := range o.Status {
		if st < 100 || st > 599 {
			p = append(p, fmt.Sprintf("status %d: want 100 to 599", st))
		}
	}
	for _, re := range []struct{ key, expr string }{
		{"log_contains", o.LogContains}, {"no_log_contains", o.NoLogContains},
		{"log.match_regex", l.MatchRegex}, {"log.no_match_regex", l.NoMatchRegex},
	} {
		if re.expr == "" {
			continue
		}
		if _, err := compileCached(re.expr); err != nil {
			p = append(p, fmt.Sprintf("%s: %v", re.key, err))
		}
	}
	if o.Isolated && len(l.ExpectIDs) != 1 {
		p = append(p, fmt.Sprintf("isolated needs exactly one id in log.expect_ids, not %d", len(l.ExpectIDs)))
	}
	return p
}

// assertsNothing reports whether o checks nothing at all. The schema
// allows it (a corpus of requests is written so), but a pack test whose
// output is empty passes whatever the rules do.
func (o Output) assertsNothing() bool {
	l := o.Log
	return len(o.Status) == 0 && o.ResponseContains == "" && o.LogContains == "" && o.NoLogContains == "" &&
		len(l.ExpectIDs) == 0 && len(l.NoExpectIDs) == 0 && l.MatchRegex == "" && l.NoMatchRegex == "" && !o.ExpectError
}

// DecodePackTest is Decode for a pack's own tests: every stage must
// also assert something.
func DecodePackTest(name string, src []byte) (File, error) {
	f, err := Decode(name, src)
	if err != nil {
		return f, err
	}
	var errs []error
	for _, t := range f.Tests {
		for _, st := range t.Stages {
			if st.Output.assertsNothing() {
				errs = append(errs, &Error{name, st.Output.line, "output asserts nothing (no status, log, response_contains, log_contains or expect_error): the test would pass whatever the rules do"})
			}
		}
	}
	if len(errs) > 0 {
		return File{}, errors.Join(errs...)
	}
	return f, nil
}

// body returns the stage's request body: data, or encoded_data decoded.
func (in Input) body() (string, error) {
	if in.EncodedData != nil {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(*in.EncodedData), ""))
		if err != nil {
			return "", fmt.Errorf("encoded_data: %w", err)
		}
		return string(b), nil
	}
	if in.Data != nil {
		return expandData(*in.Data)
	}
	return "", nil
}

// maxRepeat bounds what a data template may build: CRS's largest is 64,200
// bytes, and a test file must not be able to ask for gigabytes.
const maxRepeat = 1 << 20

// dataFuncs are the template functions CRS's tests use in data, with the
// argument order go-ftw's (sprig's) repeat takes: {{ "1" | repeat 64200 }}.
var dataFuncs = template.FuncMap{
	"repeat": func(n int, s string) (string, error) {
		if n < 0 || len(s) > 0 && n > maxRepeat/len(s) { // n*len(s) could overflow
			return "", fmt.Errorf("repeat %d of %d bytes: more than %d bytes", n, len(s), maxRepeat)
		}
		return strings.Repeat(s, n), nil
	},
}

// expandData runs data as a Go template when it holds one, as go-ftw does:
// CRS writes large bodies as {{ "1" | repeat N }} rather than N bytes.
func expandData(data string) (string, error) {
	if !strings.Contains(data, "{{") {
		return data, nil
	}
	t, err := template.New("data").Funcs(dataFuncs).Option("missingkey=error").Parse(data)
	if err != nil {
		return "", fmt.Errorf("data: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("data: %w", err)
	}
	return b.String(), nil
}

// rawRequest builds the bytes go-ftw would send for in. With
// autocomplete_headers (the default) it adds what go-ftw adds when the test
// does not say: Connection: close, and for a body its Content-Length and
// Content-Type: application/x-www-form-urlencoded. It adds no Host: CRS's
// tests of a missing Host (920280) rely on that.
func (in Input) Request() ([]byte, error) {
	if in.EncodedRequest != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(in.EncodedRequest), ""))
		if err != nil {
			return nil, fmt.Errorf("encoded_request: %w", err)
		}
		return raw, nil
	}
	if in.RawRequest != nil {
		return []byte(*in.RawRequest), nil
	}
	data, err := in.body()
	if err != nil {
		return nil, err
	}
	method, uri, version := "GET", "/", "HTTP/1.1"
	if in.Method != nil {
		method = *in.Method
	}
	if in.URI != nil {
		uri = *in.URI
	}
	if in.Version != nil {
		version = *in.Version
	}
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(uri)
	if version != "" {
		b.WriteByte(' ')
		b.WriteString(version)
	}
	b.WriteString("\r\n")
	seen := map[string]bool{}
	for _, h := range in.headerList() {
		seen[strings.ToLower(h.Name)] = true
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, h.Value)
	}
	if in.AutocompleteHeaders == nil || *in.AutocompleteHeaders {
		if !seen["connection"] {
			b.WriteString("Connection: close\r\n")
		}
		if data != "" && !seen["content-type"] {
			b.WriteString("Content-Type: application/x-www-form-urlencoded\r\n")
		}
		if data != "" && !seen["content-length"] && !seen["transfer-encoding"] {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(data))
		}
	}
	b.WriteString("\r\n")
	b.WriteString(data)
	return []byte(b.String()), nil
}

// headerList is headers or ordered_headers, in file order.
func (in Input) headerList() []Header {
	if len(in.OrderedHeaders) > 0 {
		return in.OrderedHeaders
	}
	out := make([]Header, 0, len(in.Headers))
	for _, kv := range in.Headers {
		h := Header{Name: fmt.Sprint(kv.Key)}
		if kv.Value != nil {
			h.Value = fmt.Sprint(kv.Value)
		}
		out = append(out, h)
	}
	return out
}

var (
	regexMu    sync.Mutex
	regexCache = map[string]*regexp.Regexp{}
)

// compileCached compiles expr once per process; decoding compiles every
// expression of a file, so the runner finds them here.
func compileCached(expr string) (*regexp.Regexp, error) {
	regexMu.Lock()
	defer regexMu.Unlock()
	if re, ok := regexCache[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	regexCache[expr] = re
	return re, nil
}

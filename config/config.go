// Package config owns edgeguard's configuration file: its schema, composed
// from each stage's own Config struct; strict decoding, where an unknown key
// or a bad value is an error naming FILE:LINE; defaults; and validation of
// the whole. The same structs serve the Go API and the Caddy JSON.
//
// The stage table (stages.go) is the one place that lists the stages:
// decoding, route_stages, validation and the Guard that builds the chain
// all loop over it, so a stage is added with one entry (or one Register
// call) and no switch anywhere names it.
package config

import (
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/filters/volumetric"
	"github.com/edgeguard/edgeguard/filters/waf"
	"github.com/edgeguard/edgeguard/forward"
	"github.com/edgeguard/edgeguard/ipparse"
)

// Config is the whole configuration file.
type Config struct {
	// Listen is the address the edge listener binds, host:port. Default ":8080".
	Listen string `yaml:"listen" json:"listen"`
	// TLS serves HTTPS on Listen: from certificate files, picked by SNI,
	// and from certificates obtained and renewed through ACME.
	TLS TLS `yaml:"tls" json:"tls"`
	// Server holds the client-side limits of the edge listener.
	Server Server `yaml:"server" json:"server"`
	// ClientIP says how the client address is learned: PROXY protocol from
	// trusted load balancers, then forwarding headers from trusted proxies.
	ClientIP ipparse.Config `yaml:"client_ip" json:"client_ip"`
	// Stages is the order of the filter chain. Default: reputation,
	// volumetric, waf, quota (cheapest and most decisive first), where quota
	// is left out when the file has no quota block. A stage left out does
	// not run; each name may appear once.
	Stages []string `yaml:"stages" json:"stages"`
	// Reputation: allow/deny lists and strike-driven bans.
	Reputation reputation.Config `yaml:"reputation" json:"reputation"`
	// Volumetric: the per-client leaky bucket against spikes.
	Volumetric volumetric.Config `yaml:"volumetric" json:"volumetric"`
	// WAF: OWASP CRS v4 on Coraza plus rule packs.
	WAF waf.Config `yaml:"waf" json:"waf"`
	// Quota: per-client GCRA quotas, exact across the fleet through Redis.
	Quota quota.Config `yaml:"quota" json:"quota"`
	// Forward: upstream, upstreams, routes and upstream timeouts, at the top
	// level of the file.
	Forward forward.Config `yaml:",inline" json:"forward"`
	// RouteStages overrides stage settings for the routes it names (the key
	// is a route's name, routes[].name or its default host+path). Each block
	// is laid over the top-level block of the same stage: keys it sets
	// replace, keys it leaves out are inherited. A route so overridden gets
	// its own instance of that stage (its own buckets, its own WAF); the
	// chain's order and the other stages stay shared. Example:
	//
	//	route_stages:
	//	  /login:  {volumetric: {rate: "5/m", burst: 5}}
	//	  /upload: {waf: {body_limit: 100MiB}}
	RouteStages map[string]RouteStages `yaml:"route_stages" json:"route_stages"`
	// Extra holds, by stage name, the top-level blocks of stages registered
	// without a field of their own (see Register); a stage missing here
	// runs with its zero block. In the file such a block is a top-level key
	// like any other.
	Extra map[string]StageConfig `yaml:"-" json:"-"`
	// Admin is the admin listener: health, readiness, metrics, bans.
	Admin Admin `yaml:"admin" json:"admin"`
	// Auth is the forward-auth listener nginx, Traefik and Envoy ask
	// before they serve a request. Off unless auth.listen is set.
	Auth Auth `yaml:"auth" json:"auth"`
	// Log sets the structured log.
	Log Log `yaml:"log" json:"log"`

	src *source // the file Parse read this from; nil for a Config built in code
}

// RouteStages holds one route's stage overrides. After Parse each set
// block is complete: the top-level block with the route's keys laid over it.
type RouteStages struct {
	// Volumetric replaces the volumetric settings for the route.
	Volumetric *volumetric.Config `yaml:"volumetric" json:"volumetric"`
	// WAF replaces the WAF settings for the route (a larger body limit for
	// an upload route, other exclusions).
	WAF *waf.Config `yaml:"waf" json:"waf"`
	// Quota replaces the quota settings for the route.
	Quota *quota.Config `yaml:"quota" json:"quota"`
	// Extra holds, by stage name, the route's blocks for stages registered
	// without a field of their own (see Register), each complete.
	Extra map[string]StageConfig `yaml:"-" json:"-"`
}

// Overrides reports whether rs sets the named stage.
func (rs RouteStages) Overrides(stage string) bool {
	s, ok := LookupStage(stage)
	return ok && s.Overrides(rs)
}

// Server bounds what a client may cost the edge listener.
type Server struct {
	// ReadHeaderTimeout bounds how long a client may take to send the request
	// headers (slowloris). Default 10s.
	ReadHeaderTimeout filters.Duration `yaml:"read_header_timeout" json:"read_header_timeout"`
	// ReadTimeout bounds reading the whole request, body included; 0 (the
	// default) leaves bodies unbounded in total time, since uploads can be
	// slow: ClientBodyTimeout bounds a stall instead.
	ReadTimeout filters.Duration `yaml:"read_timeout" json:"read_timeout"`
	// ClientBodyTimeout is the longest a client may go without sending any
	// of its body (nginx's client_body_timeout): not a total, a time without
	// progress, so a large upload at any steady speed is fine and a client
	// that declares a body and stalls loses its connection. Default 60s.
	ClientBodyTimeout filters.Duration `yaml:"client_body_timeout" json:"client_body_timeout"`
	// SendTimeout is the longest a client may go without accepting any of
	// the response (nginx's send_timeout), again a time without progress.
	// Default 60s.
	SendTimeout filters.Duration `yaml:"send_timeout" json:"send_timeout"`
	// MaxBodyMemory caps the bytes of request bodies held in memory at once,
	// process-wide: what the stages have read (the WAF, up to its
	// body_limit) and not yet forwarded. Counted as bytes arrive, not as
	// Content-Length claims. A request that would go past it is answered
	// 503 (edgeguard_body_memory_refused_total). Default 256MiB.
	MaxBodyMemory filters.Size `yaml:"max_body_memory" json:"max_body_memory"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout filters.Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// MaxHeaderBytes caps the request line and headers. Default 64KiB.
	MaxHeaderBytes filters.Size `yaml:"max_header_bytes" json:"max_header_bytes"`
	// ShutdownTimeout is how long SIGTERM waits for in-flight requests
	// before closing them. Default 30s.
	ShutdownTimeout filters.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is the admin address. Default "127.0.0.1:9090"; "off" disables
	// it. A non-loopback address without Token is refused at start.
	Listen string `yaml:"listen" json:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every admin request.
	Token string `yaml:"token" json:"token"`
	// Pprof mounts Go's profiler at /debug/pprof/ on the admin listener
	// (behind Token like every admin route). Off by default: a profile
	// shows the code paths and memory of the running process, and taking
	// one costs CPU on the edge.
	Pprof bool `yaml:"pprof" json:"pprof"`
	// AllowedOrigins lists the web origins ("https://console.example",
	// scheme://host[:port]) whose pages may call the admin API from a
	// browser. Empty by default: a request with an Origin header or
	// Sec-Fetch-Site: cross-site is refused, so that no web page the
	// operator opens can ban, unban or close routes through the browser.
	AllowedOrigins []string `yaml:"allowed_origins" json:"allowed_origins"`
}

// Auth configures the forward-auth listener.
type Auth struct {
	// Listen is its address, host:port; empty (the default) binds none.
	// It answers /nginx (auth_request), /traefik (ForwardAuth) and
	// /envoy/PATH (ext_authz over HTTP), and only peers in
	// client_ip.trusted_proxies. With it set, upstream is optional: the
	// proxies serve, edgeguard only decides.
	Listen string `yaml:"listen" json:"listen"`
}

// Log configures the structured log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level" json:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format" json:"format"`
	// Access configures the per-request access line: a block, or true
	// (the defaults) or false (no access line).
	Access AccessLog `yaml:"access" json:"access"`
}

// AccessLog configures the access line written for each request.
type AccessLog struct {
	// Enabled turns the access line on (the default) or off; "access:
	// false" says the same.
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Format is json (the default: one record per request through the
	// structured log, in log.format) or combined (the Apache/nginx
	// combined line, for the tools that read it).
	Format string `yaml:"format" json:"format"`
	// Sample is the share of requests logged, above 0 and at most 1 (the
	// default: every request). Refused requests and 5xx answers are
	// always logged: they are the lines that answer questions.
	Sample float64 `yaml:"sample" json:"sample"`
	// Redact names query parameters whose values are logged as REDACTED.
	// Default: access_token, api_key, apikey, code, key, password,
	// secret, signature, token; [] logs every value.
	Redact []string `yaml:"redact" json:"redact"`
}

// DefaultRedact are the query parameters whose values the access log
// hides unless log.access.redact says otherwise: the names credentials
// travel under in URLs.
var DefaultRedact = []string{"access_token", "api_key", "apikey", "code", "key", "password", "secret", "signature", "token"}

// On reports whether the access line is written.
func (a AccessLog) On() bool { return a.Enabled == nil || *a.Enabled }

// UnmarshalYAML accepts true or false for the whole block.
func (a *AccessLog) UnmarshalYAML(unmarshal func(any) error) error {
	var on bool
	if err := unmarshal(&on); err == nil {
		*a = AccessLog{Enabled: &on}
		return nil
	}
	type block AccessLog // without this method
	return unmarshal((*block)(a))
}

// DefaultStages is the chain order when the file names none. Parse leaves
// quota out of it when the file has no quota block: a quota is a policy
// (how much of the API a client may use), and no number fits every API.
var DefaultStages = []string{"reputation", "volumetric", "waf", "quota"}

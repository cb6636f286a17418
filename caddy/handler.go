package edgeguardcaddy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/filters/volumetric"
	"github.com/edgeguard/edgeguard/filters/waf"
	"github.com/edgeguard/edgeguard/forward"
	"github.com/edgeguard/edgeguard/ipparse"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler runs edgeguard's filter chain in front of the handlers after it.
// A request the chain denies is answered here (403, 429 with Retry-After,
// the request id); one it allows goes on with the RateLimit headers on
// the response.
//
// Its stage blocks are edgeguard's own config structs, with the JSON names
// of edgeguard's YAML keys. A block set here replaces the same block of
// ConfigFile.
type Handler struct {
	// Name tells this handler's state apart from other edgeguard handlers'
	// across a reload: a handler whose settings changed takes over the
	// buckets, bans and Redis clients of the handler of the same name in
	// the config it replaces. Give each edgeguard handler of a config its
	// own name. Default "".
	Name string `json:"name,omitempty"`
	// ConfigFile is an edgeguard YAML file to take the stages from. Its
	// listeners, log, upstreams and routes are ignored (Caddy has its own),
	// and it must leave client_ip to Caddy: only client_ip.ipv6_prefix
	// may be set.
	ConfigFile string `json:"config_file,omitempty"`
	// Stages is the order of the chain. Default: the file's stages, or
	// without a file the stages that have a block here, in edgeguard's
	// default order (reputation, volumetric, waf, quota).
	Stages []string `json:"stages,omitempty"`
	// Reputation: allow/deny lists and strike-driven bans.
	Reputation *reputation.Config `json:"reputation,omitempty"`
	// Volumetric: the per-client leaky bucket against spikes.
	Volumetric *volumetric.Config `json:"volumetric,omitempty"`
	// WAF: OWASP CRS v4 on Coraza plus rule packs.
	WAF *waf.Config `json:"waf,omitempty"`
	// Quota: per-client GCRA quotas, exact across a fleet through Redis.
	Quota *quota.Config `json:"quota,omitempty"`

	cfg   *config.Config
	guard *guardEntry
	key   string
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.edgeguard",
		New: func() caddy.Module { return new(Handler) },
	}
}

// guards holds the Guards in service, by name and settings: a reload that
// keeps a handler's settings keeps its Guard, and with it every bucket,
// ban and connection.
var guards = caddy.NewUsagePool()

// latest is the last Guard provisioned under each name: the one a handler
// of that name whose settings changed takes its state over from.
var latest sync.Map // name → *edgeguard.Guard

// guardEntry is a Guard in the usage pool.
type guardEntry struct{ *edgeguard.Guard }

func (e guardEntry) Destruct() error { return e.Close() }

// Provision builds the config and takes the Guard for it from the pool,
// or builds one as the successor of the last of its name.
func (h *Handler) Provision(ctx caddy.Context) error {
	cfg, err := h.config()
	if err != nil {
		return err
	}
	h.cfg = cfg
	settings, err := json.Marshal(struct {
		H *Handler
		C *config.Config
	}{h, cfg})
	if err != nil {
		return fmt.Errorf("edgeguard: key the settings: %w", err)
	}
	sum := sha256.Sum256(settings)
	h.key = h.Name + "\x00" + hex.EncodeToString(sum[:])
	v, _, err := guards.LoadOrNew(h.key, func() (caddy.Destructor, error) {
		opts := []edgeguard.Option{edgeguard.WithLogger(ctx.Slogger())}
		if prev, ok := latest.Load(h.Name); ok {
			opts = append(opts, edgeguard.WithPrevious(prev.(*edgeguard.Guard)))
		}
		g, err := edgeguard.New(cfg, opts...)
		if err != nil {
			return nil, err
		}
		return guardEntry{g}, nil
	})
	if err != nil {
		return err
	}
	e := v.(guardEntry)
	h.guard = &e
	latest.Store(h.Name, e.Guard)
	return nil
}

// config is the edgeguard config h describes: ConfigFile's (or an empty
// one), with h's blocks laid over it.
func (h *Handler) config() (*config.Config, error) {
	file := h.ConfigFile
	var cfg *config.Config
	var err error
	if file != "" {
		cfg, err = config.Load(file)
	} else {
		cfg, err = config.Parse("edgeguard handler", []byte("stages: []\n"))
		cfg.Stages = nil
	}
	if err != nil {
		return nil, err
	}
	if h.Reputation != nil {
		cfg.Reputation = *h.Reputation
	}
	if h.Volumetric != nil {
		cfg.Volumetric = *h.Volumetric
	}
	if h.WAF != nil {
		cfg.WAF = *h.WAF
	}
	if h.Quota != nil {
		cfg.Quota = *h.Quota
	}
	switch {
	case h.Stages != nil:
		cfg.Stages = slices.Clone(h.Stages)
	case file == "":
		cfg.Stages = []string{}
		for _, s := range config.DefaultStages {
			if h.sets(s) {
				cfg.Stages = append(cfg.Stages, s)
			}
		}
	}
	if c := cfg.ClientIP; len(c.TrustedProxies) > 0 || c.Header != "" || len(c.ProxyProtocol.Trusted) > 0 {
		return nil, fmt.Errorf("edgeguard: %s: client_ip is Caddy's to resolve (its trusted_proxies and proxy_protocol listener wrapper): set only client_ip.ipv6_prefix", file)
	}
	cfg.ClientIP = ipparse.Config{IPv6Prefix: cfg.ClientIP.IPv6Prefix}
	cfg.Forward, cfg.RouteStages = forward.Config{}, nil
	return cfg, nil
}

func (h *Handler) sets(stage string) bool {
	switch stage {
	case "reputation":
		return h.Reputation != nil
	case volumetric.Name:
		return h.Volumetric != nil
	case waf.Name:
		return h.WAF != nil
	case quota.Name:
		return h.Quota != nil
	}
	return false
}

// Validate checks the chain as edgeguard would before building it.
func (h *Handler) Validate() error {
	if h.cfg == nil {
		return errors.New("edgeguard: not provisioned")
	}
	if err := h.cfg.Validate(); err != nil {
		return fmt.Errorf("edgeguard: %w", err)
	}
	return nil
}

// Cleanup lets go of the Guard; the last handler to hold it closes it.
func (h *Handler) Cleanup() error {
	if h.key == "" {
		return nil
	}
	closed, err := guards.Delete(h.key)
	if closed {
		// A handler of this name added later must not take over the
		// state of a closed Guard.
		latest.CompareAndDelete(h.Name, h.guard.Guard)
	}
	return err
}

// ServeHTTP runs the chain on the client Caddy resolved and, if it allows
// the request, the handlers after this one.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	var nextErr error
	peer := r.RemoteAddr
	in := r
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		// edgeguard takes the client from RemoteAddr when no proxy is
		// trusted: hand it Caddy's answer.
		in = r.WithContext(r.Context())
		in.RemoteAddr = ip
	}
	h.guard.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = peer // the handlers after us see the connection as it is
		nextErr = next.ServeHTTP(w, r)
	})).ServeHTTP(w, in)
	return nextErr
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

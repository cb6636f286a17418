package waf

import (
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins"

	"github.com/edgeguard/edgeguard/filters/waf/rx"
	"github.com/edgeguard/edgeguard/filters/waf/transform"
)

// Coraza looks operators and transformations up by name when it parses a
// rule, in registries global to the process: edgeguard's @rx
// (filters/waf/rx) and transformations (filters/waf/transform) must be
// registered before the first rule set is parsed, and they then serve
// every WAF the process builds.
var (
	pluginsOnce sync.Once
	// pluginsRegistered says Coraza's registries hold ours.
	pluginsRegistered atomic.Bool
)

// useOwnPlugins registers edgeguard's operators and transformations, once
// per process.
func useOwnPlugins() {
	pluginsOnce.Do(func() {
		rx.Register()
		transform.Register()
		plugins.RegisterOperator(chainRxName, newChainRx)
		plugins.RegisterOperator(rxPlanName, newRxPlan)
		pluginsRegistered.Store(true)
	})
}

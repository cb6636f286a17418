package waf

import (
	"sync"
	"sync/atomic"

	"github.com/edgeguard/edgeguard/filters/waf/rx"
)

// Coraza looks operators up by name when it parses a rule, in a registry
// that is global to the process: the fast @rx (filters/waf/rx) must be
// registered before the first rule set is parsed, and it then serves every
// WAF the process builds.
var (
	operatorsOnce sync.Once
	// operatorsRegistered says the fast operators are in place.
	operatorsRegistered atomic.Bool
)

// useFastOperators registers edgeguard's operators, once per process.
func useFastOperators() {
	operatorsOnce.Do(func() {
		rx.Register()
		operatorsRegistered.Store(true)
	})
}

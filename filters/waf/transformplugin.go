package waf

import (
	"sync"
	"sync/atomic"

	"github.com/edgeguard/edgeguard/filters/waf/transform"
)

var (
	transformOnce sync.Once
	// ownTransformations is set once Coraza's registry holds ours: from
	// then on every rule set compiled in the process uses them.
	ownTransformations atomic.Bool
)

// useOwnTransformations installs filters/waf/transform's functions in
// Coraza's (global) registry before the first rule set is compiled; rules
// look transformations up when they are parsed.
func useOwnTransformations() {
	transformOnce.Do(func() {
		transform.Register()
		ownTransformations.Store(true)
	})
}

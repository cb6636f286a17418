package edgeguard

import (
	_ "embed"

	"github.com/edgeguard/edgeguard/config"
)

// defaultStages is the stage part of `edgeguard demo`'s config: every
// stage on, all state in memory, nothing to dial.
//
//go:embed defaults.yaml
var defaultStages []byte

// DefaultConfig returns a new config that runs the stages of `edgeguard
// demo`: reputation (10 denies in a minute ban for a minute, doubling up to
// an hour), volumetric (10/s, burst 20), the WAF (OWASP CRS at paranoia 1,
// blocking), and a quota of 600 a minute per API key or address in memory.
// It names no upstream: it is a config for New(...).Wrap. Change what you
// need before calling New; each call returns a config of its own.
func DefaultConfig() *config.Config {
	cfg, err := config.Parse("edgeguard.DefaultConfig", defaultStages)
	if err != nil {
		panic("edgeguard: the embedded default config does not load: " + err.Error()) // a test loads it
	}
	return cfg
}

package edgeguard

import (
	"fmt"
	"runtime/debug"
)

// Modules whose versions BuildInfo reports: the WAF engine and the rule
// set, which decide what a request is refused for.
const (
	corazaModule = "github.com/corazawaf/coraza/v3"
	crsModule    = "github.com/corazawaf/coraza-coreruleset/v4" // versioned as the CRS release it embeds
)

// buildVersion and buildCommit are set at link time (-ldflags "-X
// github.com/edgeguard/edgeguard.buildVersion=... -X
// github.com/edgeguard/edgeguard.buildCommit=...") by the Makefile and the
// Dockerfile. They win over what the toolchain stamped: a build that
// passes them said on purpose what it is (git describe is more telling
// than a pseudo-version), and a build with -buildvcs=false or without
// .git stamps nothing else.
var buildVersion, buildCommit string

// BuildInfo is what a binary knows about how it was built, from
// runtime/debug.ReadBuildInfo: the `version` command prints it and the
// edgeguard_build_info metric carries it.
type BuildInfo struct {
	// Version is the main module's version; "dev" for a local build.
	Version string
	// Commit is the VCS revision, with "+dirty" when the tree was modified.
	Commit string
	// GoVersion is the toolchain that built the binary.
	GoVersion string
	// Coraza and CRS are the versions of the WAF engine and of the
	// embedded OWASP Core Rule Set.
	Coraza, CRS string
}

// ReadBuildInfo reads the running binary's build information; what it
// cannot learn reads "unknown".
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "dev", Commit: "unknown", GoVersion: "unknown", Coraza: "unknown", CRS: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.fromModule(bi)
	}
	if buildVersion != "" {
		b.Version = buildVersion
	}
	if buildCommit != "" {
		b.Commit = buildCommit
	}
	return b
}

// fromModule fills b from what the toolchain stamped in the binary.
func (b *BuildInfo) fromModule(bi *debug.BuildInfo) {
	b.GoVersion = bi.GoVersion
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Commit != "unknown" {
		b.Commit += "+dirty"
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		switch d.Path {
		case corazaModule:
			b.Coraza = d.Version
		case crsModule:
			b.CRS = d.Version
		}
	}
}

// String is the line `edgeguard version` prints.
func (b BuildInfo) String() string {
	return fmt.Sprintf("edgeguard %s (commit %s, %s, coraza %s, crs %s)", b.Version, b.Commit, b.GoVersion, b.Coraza, b.CRS)
}

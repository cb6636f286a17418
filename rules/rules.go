// Package rules holds edgeguard's shipped rule packs as data. Only the WAF
// profiles (profile-web, profile-api, profile-graphql) are compiled into the
// binary, because `waf.profile` must work without any file beside it; the
// other packs are loaded from disk by path like an operator's own.
package rules

import "embed"

// Profiles holds the profile directories, each with a NAME-before.conf
// (CRS's settings, loaded after crs-setup and before CRS's rules) and a
// NAME-after.conf (exclusions, loaded after CRS's rules): the two plugin
// points CRS defines for such files.
//
//go:embed profile-web profile-api profile-graphql
var Profiles embed.FS

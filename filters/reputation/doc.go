// Package reputation owns one idea: who has already misbehaved is turned away
// at the door. It answers from allow/deny lists of addresses and prefixes
// (longest-prefix tables), from bans that strikes reported by the other
// stages earn a client (escalating on repeat), and from bans shared by every
// node of a fleet through Redis. A decision is two or three table lookups on
// the request path; everything that touches the disk or the network runs in
// background goroutines the Filter owns and stops in Close.
package reputation

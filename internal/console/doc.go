// Package console owns the operator's web console: the pages under /ui/ on
// the admin listener, and the rules by which a browser may use the admin API
// at all.
//
// # Pages
//
// The console is plain HTML, CSS and JavaScript in ui/, embedded in the
// binary: no CDN, no build step, nothing fetched from anywhere but the admin
// listener itself. One page with hash routes (overview, clients, WAF with a
// detail view per blocked request, bans, routes and upstreams) polls the
// JSON the admin API already serves (/v1/activity/*, /v1/bans, /v1/routes,
// /v1/upstreams) about once a second. It renders what it reads with
// textContent only, never as markup: paths, reasons and client names are
// chosen by whoever sent the request.
//
// # Authentication
//
// The console asks for no more than the rest of the admin API: nothing on a
// loopback listener without admin.token, the token otherwise. A browser
// cannot put a bearer token on a navigation, so /ui/login trades the token
// for a session cookie (HttpOnly, SameSite=Strict). The cookie carries an
// expiry and an HMAC of it, never the token: the MAC key is derived from the
// token and a secret drawn once per process, so a session ends with its
// expiry, with a change of the token, or with a restart, and a stolen
// cookie says nothing about the token.
//
// # Cross-site requests
//
// The admin listener refuses requests from browser pages (they carry an
// Origin header) unless admin.allowed_origins lists their origin. The
// console's own writes are browser requests of the admin's own origin, so
// the admin gate lets a same-origin request through when it also carries
// the CSRF token of the page that sent it (header X-CSRF-Token): an HMAC of
// the session under the same key, which only a page read from the admin
// listener can know. Cross-site requests stay refused, and tools such as
// curl (no Origin) are unaffected.
package console

// Command caddy is Caddy with its standard modules and edgeguard's
// http.handlers.edgeguard: what `xcaddy build --with
// github.com/edgeguard/edgeguard/caddy` produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/edgeguard/edgeguard/caddy"
)

func main() {
	caddycmd.Main()
}

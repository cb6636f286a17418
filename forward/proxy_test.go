package forward

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestForwardTakesTheGivenRoute: Forward serves the route its caller has
// routed the request to (the Guard routes before the chain, and a route's
// stage settings were chosen by it), and routes only when that names no
// route of its own; ServeHTTP routes a request whose chain's view names no
// route.
func TestForwardTakesTheGivenRoute(t *testing.T) {
	def := startBackend(t, "default", nil)
	api := startBackend(t, "api", nil)
	f := newForwarder(t, Config{Upstream: def.url(),
		Upstreams: map[string]Pool{"api": {Backends: []string{api.url()}}},
		Routes:    []Route{{Name: "api", Path: "/api", Upstream: "api"}},
	}, Env{})
	for _, tt := range []struct {
		name, path, route string
		viaServeHTTP      bool
		want              string
	}{
		{"forward on the default route", "/api/orders", "", false, "default"},
		{"forward on a named route", "/home", "api", false, "api"},
		{"forward on a route not of this forwarder", "/api/orders", "gone", false, "api"},
		{"ServeHTTP without a route", "/api/orders", "", true, "api"},
		{"ServeHTTP on a named route", "/home", "api", true, "api"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fr := clientReq("203.0.113.7")
			fr.Route = tt.route
			r := httptest.NewRequest(http.MethodGet, "http://shop.example"+tt.path, nil)
			fr.HTTP = r
			w := httptest.NewRecorder()
			if tt.viaServeHTTP {
				w = do(f, http.MethodGet, "http://shop.example"+tt.path, nil, fr)
			} else {
				f.Forward(w, r, fr)
			}
			if got := w.Header().Get("X-Backend"); w.Code != http.StatusOK || got != tt.want {
				t.Errorf("%s: status %d from backend %q, want 200 from %q", tt.path, w.Code, got, tt.want)
			}
		})
	}
}

package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/edgeguard/edgeguard/config"
)

// authServer binds the forward-auth listener when auth.listen is set: the
// Guard in service answers there (Guard.ServeAuth), so a reload changes
// its decisions as it changes the edge's.
func (s *server) authServer(cfg *config.Config) (*http.Server, net.Listener, error) {
	if cfg.Auth.Listen == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Auth.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on auth address %s: %w", cfg.Auth.Listen, err)
	}
	s.authAddr = ln.Addr()
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.cur.Load().ServeAuth(w, r) }),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes:    int(cfg.Server.MaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return srv, ln, nil
}

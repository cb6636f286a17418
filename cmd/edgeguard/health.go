package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// defaultHealthURL is the admin listener's liveness route at its default
// address; dist/Dockerfile's HEALTHCHECK runs `edgeguard health` with it.
const defaultHealthURL = "http://127.0.0.1:9090/healthz"

// cmdHealth asks a running edgeguard's admin listener whether it is alive:
// exit 0 on 200, 1 otherwise. It exists for container health checks, in
// images that have no curl or wget.
func cmdHealth(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("health", "health [-token TOKEN] [URL]  (default "+defaultHealthURL+")", 1, stdout, stderr)
	token := c.fs.String("token", os.Getenv("EDGEGUARD_ADMIN_TOKEN"), "admin bearer token (default $EDGEGUARD_ADMIN_TOKEN)")
	timeout := c.fs.Duration("timeout", 3*time.Second, "give up after this long")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	url := defaultHealthURL
	if len(pos) == 1 {
		url = pos[0]
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: URL %q: %w", url, err)
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := (&http.Client{Timeout: *timeout}).Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

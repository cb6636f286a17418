package forward

import (
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// startChecks runs one checker goroutine per backend of p. Checks use their
// own connections (no keep-alive), so a check proves that a new connection
// can be made, which is what the next request will need.
func (f *Forwarder) startChecks(p *pool, dialer *net.Dialer) {
	tr := &http.Transport{
		DialContext:       dialer.DialContext,
		DisableKeepAlives: true,
	}
	if p.proxyProto {
		tr.DialContext = proxyProtoDialer(dialer)
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   p.check.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	for _, b := range p.backends {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer tr.CloseIdleConnections()
			tick := time.NewTicker(p.check.interval)
			defer tick.Stop()
			for {
				ok := f.checkOnce(client, b)
				if f.ctx.Err() != nil {
					return
				}
				b.recordCheck(ok, f.clock())
				select {
				case <-f.ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
}

// checkOnce GETs the check path; a 2xx or 3xx answer is a success.
func (f *Forwarder) checkOnce(client *http.Client, b *backend) bool {
	ctx, cancel := context.WithTimeout(f.ctx, b.pool.check.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url.String()+b.pool.check.path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "edgeguard-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

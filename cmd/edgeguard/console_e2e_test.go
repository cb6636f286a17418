package main

// The console in a real headless Chromium against the real binary: what an
// operator sees and clicks, with the page's CSP in force and every console
// error, exception and CSP violation failing the test.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// consoleWait bounds every wait for the page. Generous: under -race the
// binary, and CRS in it, is several times slower, and the machine is shared.
const consoleWait = 30 * time.Second

// chromiumPath finds Debian's chromium (or another Chrome); without one the
// browser tests are skipped, except in CI, whose .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH in CI: .ci/run must install it (apt-get install chromium)")
	}
	t.Skip("console browser tests: no chromium or chromium-browser on PATH; apt-get install chromium to run them")
	return ""
}

// browser is one headless Chromium tab that records every error the page
// reports: exceptions, console.error and console.assert, and the browser's
// own error log entries (CSP violations, failed loads).
type browser struct {
	t   *testing.T
	ctx context.Context

	mu   sync.Mutex
	errs []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	binary(t) // skip in -short before starting a browser
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		// Nothing but loopback is reachable here: no component or
		// field-trial fetches, no QUIC probes.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-field-trial-config", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, b.record); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("chromium viewport: %v", err)
	}
	return b
}

// record runs on chromedp's event loop: it must return fast.
func (b *browser) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, string(a.Value)+a.Description)
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = "log (" + string(ev.Entry.Source) + "): " + ev.Entry.Text + " " + ev.Entry.URL
	default:
		return
	}
	b.mu.Lock()
	b.errs = append(b.errs, msg)
	b.mu.Unlock()
}

// takeErrors returns the errors recorded so far and forgets them.
func (b *browser) takeErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	errs := b.errs
	b.errs = nil
	return errs
}

// noErrors fails the test for every error the pages reported so far.
func (b *browser) noErrors(where string) {
	b.t.Helper()
	for _, e := range b.takeErrors() {
		b.t.Errorf("%s: the page reported an error: %s", where, e)
	}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, consoleWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage errors: %v", what, err, b.takeErrors())
	}
}

func (b *browser) eval(expr string) any {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, consoleWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is truthy in the page and returns when it became
// so. It evaluates through DevTools, as the page's CSP allows (chromedp's
// Poll compiles its predicate with new Function, which the CSP refuses).
func (b *browser) waitJS(what, expr string) time.Time {
	b.t.Helper()
	deadline := time.Now().Add(consoleWait)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(b.ctx, consoleWait)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && v {
			return time.Now()
		}
		if time.Now().After(deadline) {
			text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
			b.t.Fatalf("%s: %s not true within %v (last error %v)\npage errors: %v\npage text:\n%.2000s", what, expr, consoleWait, err, b.takeErrors(), text)
		}
		<-tick.C
	}
}

// open navigates to the console view hash and waits until its first poll
// has rendered (the status line says "live").
func (b *browser) open(admin, hash string) {
	b.t.Helper()
	b.do("open "+hash, chromedp.Navigate("http://"+admin+"/ui/#"+hash))
	b.live("first poll of " + hash)
}

// live waits until the current view's poll has rendered without an error.
// The page resets the status line on every view switch, and only the
// current view's poll sets it, so 'live' is about the view now shown.
func (b *browser) live(what string) {
	b.t.Helper()
	b.waitJS(what, `document.getElementById('status').textContent.startsWith('live')`)
}

// view switches the console to another view the way a user does, by its tab.
func (b *browser) view(name string) {
	b.t.Helper()
	b.do("tab "+name, chromedp.Click(chromedp.CSS(`nav a[data-view="`+name+`"]`)))
	b.waitJS("view "+name, `!document.getElementById('view-`+name+`').hidden`)
	b.live("first poll of view " + name)
}

// screenshot writes docs/console-NAME.png when EDGEGUARD_SCREENSHOTS is
// set, so that ordinary runs leave the tree clean.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if os.Getenv("EDGEGUARD_SCREENSHOTS") == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "console-"+name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// edgeGet sends GET path to the edge as client (by X-Forwarded-For, which
// the test config trusts from loopback) and returns the status and body.
func edgeGet(t *testing.T, edge, client, path string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+edge+path, nil)
	req.Header.Set("X-Forwarded-For", client)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: consoleWait}).Do(req)
	if err != nil {
		t.Fatalf("GET %s as %s: %v", path, client, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// load sends GETs as client every interval until the test ends (at most
// max), as background traffic for the overview.
func load(t *testing.T, edge, client string, interval time.Duration, max int) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		c := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for range max {
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+edge+"/", nil)
			req.Header.Set("X-Forwarded-For", client)
			if resp, err := c.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// consoleYAML's shop pool pairs the upstream with {{dead}}, an address
// nothing listens on, which its outlier detection ejects after 3 failed
// connections (for a minute: the test reads it on the routes page).
const consoleYAML = `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
upstreams:
  shop: {backends: ["{{upstream}}", "{{dead}}"], outlier: {failures: 3, ejection: 1m}}
admin: {listen: "127.0.0.1:0"}
client_ip:
  trusted_proxies: ["127.0.0.0/8"]
routes:
  - {name: checkout, path: /checkout, upstream: default, shield: {max_in_flight: 4, queue: 8, queue_timeout: 30s}}
  - {name: shop, path: /shop, upstream: shop}
  - {name: site, path: /, upstream: default}
stages: [reputation, volumetric, waf]
volumetric: {rate: "20/s", burst: 20}
waf: {paranoia: 1}
`

// consoleConfig is consoleYAML with {{dead}} set to a loopback address
// whose listener is closed: connections to it are refused.
func consoleConfig(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return strings.ReplaceAll(consoleYAML, "{{dead}}", "http://"+addr)
}

// TestE2EConsole walks the console's pages in Chromium while traffic
// flows: the overview shows it within 3 s, a SQLi request appears among the
// blocked ones with its rule, a ban and a route switch from the UI take
// effect at the edge, and no page reports an error.
func TestE2EConsole(t *testing.T) {
	// The echo upstream, except that a request with X-Hold waits until the
	// test releases it: a full checkout for the waiting room.
	echo := echoUpstream(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		echo.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	p := start(t, consoleConfig(t), up.URL)
	t.Cleanup(releaseAll) // first: held requests end before the binary drains
	b := newBrowser(t)

	// 1. The overview shows traffic within 3 s of load starting.
	b.open(p.admin, "overview")
	if got := b.eval(`document.getElementById('total-requests').dataset.total`); got != "0" {
		t.Fatalf("before any traffic the overview counts %v requests", got)
	}
	loadStart := time.Now()
	load(t, p.edge, "203.0.113.5", 100*time.Millisecond, 3000) // under the volumetric rate
	shown := b.waitJS("overview shows traffic", `Number(document.getElementById('total-requests').dataset.total) > 0`)
	d := shown.Sub(loadStart)
	t.Logf("the overview showed traffic %v after load started", d)
	if d > 3*time.Second {
		if raceDetector {
			t.Logf("overview showed traffic %v after load started (-race: not held to 3 s)", d)
		} else {
			t.Errorf("overview showed traffic %v after load started, want within 3 s", d)
		}
	}
	// The latency tiles and the open connections (the load's client keeps
	// its connection alive between requests).
	b.waitJS("p50 and p99 latency shown", `['latency-p50', 'latency-p99'].every(id => / ms$/.test(document.getElementById(id).textContent))`)
	b.waitJS("an active connection shown", `Number(document.getElementById('active-connections').textContent.replace(/\D/g, '')) >= 1`)
	// A flood from one client until the volumetric stage refuses it, for
	// the stage chart: 40 requests outrun its 20/s with burst 20 only if
	// they take under a second, which a loaded machine does not promise.
	refused := false
	for range 2000 {
		if code, _ := edgeGet(t, p.edge, "198.51.100.99", "/", nil); code == http.StatusTooManyRequests {
			refused = true
			break
		}
	}
	if !refused {
		t.Fatal("2000 requests from one client, none refused by volumetric (20/s, burst 20)")
	}
	b.waitJS("stage chart shows volumetric", `document.getElementById('legend-stage').textContent.includes('volumetric')`)
	b.noErrors("overview")

	// 2. A SQLi request appears among the blocked ones; its detail shows the rule.
	const reqID = "console-e2e-sqli-1"
	// The path holds markup: the page must show it as text.
	sqli := "/items/%3Cb%3Ebold%3C/b%3E?id=" + url.QueryEscape("1' UNION SELECT password FROM users--")
	if code, _ := edgeGet(t, p.edge, "198.51.100.20", sqli, map[string]string{"X-Request-Id": reqID}); code != http.StatusForbidden {
		t.Fatalf("SQLi request: %d, want 403", code)
	}
	b.view("waf")
	row := `document.querySelector('#blocked tr[data-key="` + reqID + `"]')`
	b.waitJS("SQLi request in the blocked list", row)
	if got := b.eval(row + `.cells[7].textContent`); !strings.Contains(fmt.Sprint(got), "942100") {
		t.Errorf("blocked row's rules %q, want 942100 (SQLi by libinjection)", got)
	}
	if got := b.eval(row + `.cells[4].textContent`); got != "GET /items/<b>bold</b>" {
		t.Errorf("blocked row's request %q, want the path's markup as text", got)
	}
	if got := b.eval(row + `.cells[3].textContent`); got != "site" {
		t.Errorf("blocked row's route %q, want site", got)
	}
	b.waitJS("rule 942100 among the top rules", `document.querySelector('#waf-rules tr[data-key="942100"]')`)
	b.screenshot("waf")
	b.do("open the blocked request", chromedp.Click(chromedp.CSS(`#blocked tr[data-key="`+reqID+`"] a`)))
	b.waitJS("detail view", `!document.getElementById('view-blocked').hidden`)
	b.live("first poll of the detail view")
	b.waitJS("detail shows the WAF's rule with its message", `Array.from(document.querySelectorAll('#blocked-stages tr[data-key="waf"] li')).some(li => li.textContent.includes('942100') && /SQL Injection/i.test(li.textContent))`)
	if got := b.eval(`document.querySelector('#blocked-stages tr[data-key="waf"]').cells[1].textContent`); got != "deny" {
		t.Errorf("detail: the waf stage's verdict %q, want deny", got)
	}
	b.screenshot("blocked")
	b.noErrors("WAF")

	// 3. Banning from the UI makes the next request 403; lifting restores 200.
	const client = "198.51.100.7"
	for range 5 {
		if code, _ := edgeGet(t, p.edge, client, "/", nil); code != 200 {
			t.Fatalf("GET as %s before the ban: %d", client, code)
		}
	}
	b.view("clients")
	banButton := `#clients-requests tr[data-key="` + client + `"] button.ban`
	b.waitJS("client among the top clients", `document.querySelector('`+banButton+`')`)
	b.waitJS("the volumetric flood's client among the top refused", `document.querySelector('#clients-denials tr[data-key="198.51.100.99"]')`)
	b.screenshot("clients")
	b.do("ban from the clients page", chromedp.Click(chromedp.CSS(banButton)))
	b.waitJS("ban confirmed", `document.getElementById('message').textContent.includes('Banned `+client+`')`)
	// The ban is for the select's 1h: "banned, ends in 60 min · by operator".
	b.waitJS("the client's reputation says banned by operator", `/^banned, ends in \d+ min · by operator$/.test(document.querySelector('#clients-requests tr[data-key="`+client+`"]').cells[3].textContent)`)
	if code, _ := edgeGet(t, p.edge, client, "/", nil); code != http.StatusForbidden {
		t.Errorf("GET as %s after the UI's ban: %d, want 403", client, code)
	}
	b.view("bans")
	lift := `#bans tr[data-key="` + client + `"] button.lift`
	b.waitJS("ban listed", `document.querySelector('`+lift+`')`)
	banRow := `document.querySelector('#bans tr[data-key="` + client + `"]')`
	if got := b.eval(banRow + `.cells[1].textContent`); got != "operator" {
		t.Errorf("the ban's source %q, want operator", got)
	}
	if got := fmt.Sprint(b.eval(banRow + `.cells[5].textContent`)); !regexp.MustCompile(`^\S.* \(in (59|60) min\)$`).MatchString(got) {
		t.Errorf("the ban's expiry %q, want a time and (in 60 min)", got)
	}
	b.screenshot("bans")
	b.do("lift from the bans page", chromedp.Click(chromedp.CSS(lift)))
	b.waitJS("lift confirmed", `document.getElementById('message').textContent.includes('Lifted the ban on `+client+`')`)
	if code, _ := edgeGet(t, p.edge, client, "/", nil); code != 200 {
		t.Errorf("GET as %s after the UI lifted the ban: %d, want 200", client, code)
	}
	// The form: add a ban by hand, see it listed, lift it.
	b.do("ban by the form",
		chromedp.SendKeys(chromedp.CSS(`#ban-form input[name="target"]`), "192.0.2.55"),
		chromedp.SendKeys(chromedp.CSS(`#ban-form input[name="reason"]`), "e2e form"),
		chromedp.Click(chromedp.CSS(`#ban-form button[type="submit"]`)),
	)
	b.waitJS("form ban listed", `(document.querySelector('#bans tr[data-key="192.0.2.55"]') || {textContent: ''}).textContent.includes('e2e form')`)
	if code, _ := edgeGet(t, p.edge, "192.0.2.55", "/", nil); code != http.StatusForbidden {
		t.Errorf("GET as 192.0.2.55 after the form's ban: %d, want 403", code)
	}
	b.noErrors("bans")

	// 4. Closing a route from the UI makes it answer its closed response.
	if code, _ := edgeGet(t, p.edge, "203.0.113.8", "/checkout", nil); code != 200 {
		t.Fatalf("GET /checkout while open: %d", code)
	}
	b.view("routes")
	sw := `#routes tr[data-key="checkout"] input[role="switch"]`
	b.waitJS("checkout's switch", `document.querySelector('`+sw+`') && document.querySelector('`+sw+`').checked`)
	b.waitJS("waiting room size shown", `document.querySelector('#routes tr[data-key="checkout"]').textContent.includes('0 / 8')`)
	// Requests to the shop pool until its dead backend is ejected (round
	// robin sends it every other one; a refused connection is retried on
	// the live backend, so the clients see no error).
	for i := range 12 {
		edgeGet(t, p.edge, fmt.Sprintf("203.0.113.%d", 150+i), "/shop", nil)
	}
	dead := `document.querySelector('#upstreams [data-pool="shop"] tbody tr:nth-child(2)')`
	b.waitJS("the dead backend ejected once", dead+` && `+dead+`.cells[2].textContent.startsWith('until ') && `+dead+`.cells[6].textContent === '1'`)
	b.waitJS("the shop pool: 1 of 2 available", `document.querySelector('#upstreams [data-pool="shop"] h3').textContent.includes('1 of 2 available')`)
	// Seven held requests fill checkout's 4 slots and 3 of its 8 places.
	var held sync.WaitGroup
	heldCodes := make(chan int, 7)
	for i := range 7 {
		held.Go(func() {
			req, _ := http.NewRequest("GET", "http://"+p.edge+"/checkout", nil)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", 100+i))
			req.Header.Set("X-Hold", "1")
			resp, err := (&http.Client{Timeout: 2 * consoleWait}).Do(req)
			if err != nil {
				heldCodes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			heldCodes <- resp.StatusCode
		})
	}
	checkout := `document.querySelector('#routes tr[data-key="checkout"]')`
	b.waitJS("checkout full, 3 waiting", checkout+`.cells[3].textContent === '4 / 4' && `+checkout+`.cells[4].textContent.trim() === '3 / 8'`)
	b.screenshot("routes")
	releaseAll()
	held.Wait()
	close(heldCodes)
	for code := range heldCodes {
		if code != 200 {
			t.Errorf("a held request to checkout: %d, want 200 once released", code)
		}
	}
	b.waitJS("waiting room empty again", checkout+`.cells[4].textContent.trim() === '0 / 8'`)
	b.waitJS("backend health shown", `document.querySelector('#upstreams [data-pool="default"]').textContent.includes('healthy')`)
	b.do("close checkout", chromedp.Click(chromedp.CSS(sw)))
	b.waitJS("checkout closed", `document.querySelector('#routes tr[data-key="checkout"][data-closed="true"]')`)
	if code, body := edgeGet(t, p.edge, "203.0.113.8", "/checkout", nil); code != http.StatusServiceUnavailable || !strings.Contains(body, "This offer is closed.") {
		t.Errorf("GET /checkout after the UI closed it: %d %q, want 503 with the closed body", code, body)
	}
	if code, _ := edgeGet(t, p.edge, "203.0.113.8", "/", nil); code != 200 {
		t.Errorf("GET / while checkout is closed: %d, want 200", code)
	}
	b.do("reopen checkout", chromedp.Click(chromedp.CSS(sw)))
	b.waitJS("checkout open", `document.querySelector('#routes tr[data-key="checkout"][data-closed="false"]')`)
	if code, _ := edgeGet(t, p.edge, "203.0.113.8", "/checkout", nil); code != 200 {
		t.Errorf("GET /checkout after the UI reopened it: %d, want 200", code)
	}
	b.noErrors("routes")

	// 5. No page reports an error; the overview, last, for the screenshot.
	for _, v := range []string{"clients", "waf", "bans", "routes", "overview"} {
		b.view(v) // waits for the view's poll to go live
	}
	// The last minute, where this test's traffic is visible in the chart.
	b.eval(`(() => { const s = document.getElementById('overview-window'); s.value = '60'; s.dispatchEvent(new Event('change')); })()`)
	b.waitJS("stage chart over the last minute", `['forward', 'reputation', 'volumetric', 'waf'].every(s => document.getElementById('legend-stage').textContent.includes(s))`)
	b.screenshot("overview")
	b.noErrors("every page")

	// The error collector sees CSP violations: an inline script is refused
	// and reported. (It would run if the page had no CSP.)
	b.eval(`(() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.body.append(s); })()`)
	if ran := b.eval(`window.inlineRan === true`); ran != false {
		t.Error("an inline script ran: the console's CSP is missing")
	}
	deadline := time.Now().Add(consoleWait)
	var csp []string
	for len(csp) == 0 && time.Now().Before(deadline) {
		for _, e := range b.takeErrors() {
			if strings.Contains(e, "Content Security Policy") {
				csp = append(csp, e)
			}
		}
		b.eval(`1`) // a round trip: events before its reply are recorded
	}
	if len(csp) == 0 {
		t.Error("an inline script was refused but no CSP violation reached the error collector")
	}
}

// TestE2EConsoleLogin: with admin.token set, /ui/ leads to the login form,
// a wrong token is refused, the right one opens the console, whose reads
// and writes then work on the session cookie.
func TestE2EConsoleLogin(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, strings.Replace(consoleConfig(t), `admin: {listen: "127.0.0.1:0"}`, `admin: {listen: "127.0.0.1:0", token: "e2e-s3cret"}`, 1), up.URL)
	b := newBrowser(t)

	b.do("open the console", chromedp.Navigate("http://"+p.admin+"/ui/"))
	b.waitJS("sent to the login form", `location.pathname === '/ui/login' && document.getElementById('login-form')`)
	b.screenshot("login")
	b.do("log in with a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "wrong"),
		chromedp.Click(chromedp.CSS(`#login-form button`)),
	)
	b.waitJS("wrong token refused", `!document.getElementById('message').hidden && document.getElementById('message').textContent.includes('wrong token')`)
	for _, e := range b.takeErrors() { // the refused POST is logged as a failed load, and nothing else
		if !strings.Contains(e, "401") {
			t.Errorf("login page: %s", e)
		}
	}
	b.eval(`document.getElementById('token').value = ''`)
	b.do("log in with the token",
		chromedp.SendKeys(chromedp.ID("token"), "e2e-s3cret"),
		chromedp.Click(chromedp.CSS(`#login-form button`)),
	)
	b.waitJS("console open", `location.pathname === '/ui/' && document.getElementById('status').textContent.startsWith('live')`)
	if got := b.eval(`document.cookie`); got != "" {
		t.Errorf("the session cookie is readable by script: %q", got)
	}
	b.view("routes")
	sw := `#routes tr[data-key="checkout"] input[role="switch"]`
	b.waitJS("checkout's switch", `document.querySelector('`+sw+`')`)
	b.do("close checkout", chromedp.Click(chromedp.CSS(sw)))
	b.waitJS("checkout closed", `document.querySelector('#routes tr[data-key="checkout"][data-closed="true"]')`)
	if code, _ := edgeGet(t, p.edge, "203.0.113.8", "/checkout", nil); code != http.StatusServiceUnavailable {
		t.Errorf("GET /checkout after closing it with a session: %d, want 503", code)
	}
	b.noErrors("console with a session")

	b.do("log out", chromedp.Click(chromedp.ID("logout")))
	b.waitJS("back at the login form", `location.pathname === '/ui/login'`)
	b.do("reopen the console", chromedp.Navigate("http://"+p.admin+"/ui/#bans"))
	b.waitJS("logged out: login form again", `location.pathname === '/ui/login'`)
	b.noErrors("log out")
}

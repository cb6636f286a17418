package ftw

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"time"
)

// Result is what a runner observed for one stage.
type Result struct {
	// Status is the response's status; 0 when the connection closed
	// without one.
	Status int
	// Response is the response as received: status line, headers, body.
	Response []byte
	// Cookies are the response's Set-Cookie values.
	Cookies []*http.Cookie
	// Err is why sending or reading failed, if it did.
	Err error
	// IDs are the logged rules the transaction matched; Logs their
	// error-log lines.
	IDs  []int
	Logs []string
	// Failed says why the stage failed; empty: it passed.
	Failed []string
}

// Sender sends one raw request to the WAF under test and reports what
// happened (everything but Failed).
type Sender func(raw []byte) Result

// Run runs the stages of t in order through send, carrying the cookies of
// stages that save them and retrying once a failed stage that asks for it.
// incidental reports rules that match along with any attack (scoring,
// reporting), which isolated ignores. It returns why the test failed.
func (t Test) Run(send Sender, incidental func(id int) bool) []string {
	var (
		why []string
		jar []*http.Cookie
	)
	for _, st := range t.Stages {
		res := st.Run(send, jar, incidental)
		if len(res.Failed) > 0 && st.Output.RetryOnce {
			res = st.Run(send, jar, incidental)
		}
		why = append(why, res.Failed...)
		if st.Input.SaveCookie {
			jar = append(jar, res.Cookies...)
		}
	}
	return why
}

// Run sends the stage's request, with the cookies of jar, and checks the
// outcome against its output.
func (s Stage) Run(send Sender, jar []*http.Cookie, incidental func(id int) bool) Result {
	raw, err := s.Input.Request()
	if err != nil {
		return Result{Failed: []string{err.Error()}}
	}
	res := send(withCookies(raw, jar))
	res.Failed = append(res.Failed, s.Output.Verify(res, incidental)...)
	return res
}

// Verify checks res against every assertion of o and says what failed.
func (o Output) Verify(res Result, incidental func(id int) bool) []string {
	var failed []string
	for _, id := range o.Log.ExpectIDs {
		if !slices.Contains(res.IDs, id) {
			failed = append(failed, fmt.Sprintf("expected rule %d did not match", id))
		}
	}
	for _, id := range o.Log.NoExpectIDs {
		if slices.Contains(res.IDs, id) {
			failed = append(failed, fmt.Sprintf("rule %d matched, expected not to", id))
		}
	}
	if o.Isolated && len(o.Log.ExpectIDs) == 1 {
		for _, id := range res.IDs {
			if id != o.Log.ExpectIDs[0] && (incidental == nil || !incidental(id)) {
				failed = append(failed, fmt.Sprintf("isolated: rule %d matched besides %d", id, o.Log.ExpectIDs[0]))
			}
		}
	}
	for _, re := range []string{o.Log.MatchRegex, o.LogContains} {
		if re != "" && !logMatches(res.Logs, re) {
			failed = append(failed, fmt.Sprintf("no log line matches %q", re))
		}
	}
	for _, re := range []string{o.Log.NoMatchRegex, o.NoLogContains} {
		if re != "" && logMatches(res.Logs, re) {
			failed = append(failed, fmt.Sprintf("a log line matches %q", re))
		}
	}
	if o.ResponseContains != "" && !bytes.Contains(res.Response, []byte(o.ResponseContains)) {
		failed = append(failed, fmt.Sprintf("response does not contain %q", o.ResponseContains))
	}
	if len(o.Status) > 0 && !slices.Contains(o.Status, res.Status) {
		failed = append(failed, fmt.Sprintf("status %d, want %v", res.Status, []int(o.Status)))
	}
	if o.ExpectError && res.Err == nil && res.Status < 400 {
		failed = append(failed, fmt.Sprintf("expected an error, got status %d", res.Status))
	}
	return failed
}

func logMatches(logs []string, expr string) bool {
	re, err := compileCached(expr)
	if err != nil {
		return false // Decode refuses such a file; never reached from it
	}
	for _, l := range logs {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// withCookies adds a Cookie header carrying jar after the request line.
func withCookies(raw []byte, jar []*http.Cookie) []byte {
	if len(jar) == 0 {
		return raw
	}
	i := bytes.Index(raw, []byte("\r\n"))
	if i < 0 {
		return raw
	}
	pairs := make([]string, 0, len(jar))
	for _, c := range jar {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	out := slices.Clone(raw[:i+2])
	out = append(out, "Cookie: "+strings.Join(pairs, "; ")+"\r\n"...)
	return append(out, raw[i+2:]...)
}

// Exchange writes raw to a new connection to addr and reads one response
// within timeout: its status (0 when the server closed the connection
// without one), the response as received and its cookies.
func Exchange(addr string, raw []byte, timeout time.Duration) Result {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return Result{Err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(raw); err != nil {
		return Result{Err: err}
	}
	// The method decides whether the response has a body (HEAD has none).
	method, _, _ := strings.Cut(string(raw[:min(len(raw), 64)]), " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	res := Result{Status: resp.StatusCode, Cookies: resp.Cookies()}
	if res.Response, err = httputil.DumpResponse(resp, true); err != nil {
		res.Err = err
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return res
}

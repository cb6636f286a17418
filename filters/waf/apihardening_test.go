package waf

import (
	"slices"
	"testing"
)

// TestAPIHardeningBodies: every body that is not JSON is refused, whatever
// the method and however it is framed (Content-Length, chunked, or an
// HTTP/2 body with neither), while CRS's content-type allow-list (920420)
// stays in force in front of the pack.
func TestAPIHardeningBodies(t *testing.T) {
	f := newTestFilter(t, Config{Profile: ProfileAPI, Packs: []string{"../../rules/api-hardening"}})
	const form, multipart = "application/x-www-form-urlencoded", "multipart/form-data; boundary=XyZ"
	mpBody := "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--XyZ--\r\n"
	tests := []struct {
		name     string
		method   string
		body     string
		ctype    string // "" sends none
		noLength bool   // an HTTP/2 body: no Content-Length, no Transfer-Encoding
		status   int    // 0: allowed
		rule     int
	}{
		{name: "JSON POST", method: "POST", body: `{"a":1}`, ctype: "application/json"},
		{name: "merge-patch PATCH", method: "PATCH", body: `{"a":1}`, ctype: "application/merge-patch+json"},
		{name: "JSON DELETE without length", method: "DELETE", body: `{"ids":[1,2]}`, ctype: "application/json", noLength: true},
		{name: "GET without a body", method: "GET"},
		{name: "form POST", method: "POST", body: "a=1", ctype: form, status: 415, rule: 9500200},
		{name: "form DELETE", method: "DELETE", body: "a=1", ctype: form, status: 415, rule: 9500200},
		{name: "form OPTIONS", method: "OPTIONS", body: "a=1", ctype: form, status: 415, rule: 9500200},
		{name: "multipart DELETE", method: "DELETE", body: mpBody, ctype: multipart, status: 415, rule: 9500200},
		{name: "no Content-Type", method: "PUT", body: `{"a":1}`, status: 415, rule: 9500202},
		{name: "HTTP/2 form POST without length", method: "POST", body: "a=1", ctype: form, noLength: true, status: 415, rule: 9500203},
		{name: "HTTP/2 form DELETE without length", method: "DELETE", body: "a=1", ctype: form, noLength: true, status: 415, rule: 9500203},
		{name: "HTTP/2 multipart without length", method: "POST", body: mpBody, ctype: multipart, noLength: true, status: 415, rule: 9500203},
		{name: "HTTP/2 XML without length", method: "POST", body: "<a>1</a>", ctype: "text/xml", noLength: true, status: 415, rule: 9500203},
		{name: "HTTP/2 body without any type: CRS's 920640 answers first", method: "OPTIONS", body: "a=1", noLength: true, status: 403, rule: 920640},
		{name: "a type off CRS's list: 920420 matches, the pack answers", method: "POST", body: "hello", ctype: "text/plain", status: 415, rule: 920420},
		{name: "a type off CRS's list without length: CRS's 403", method: "POST", body: "hello", ctype: "text/plain", noLength: true, status: 403, rule: 920420},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"User-Agent": "api-client/1.0", "Accept": "application/json"}
			if tc.ctype != "" {
				hdr["Content-Type"] = tc.ctype
			}
			r := newRequest(tc.method, "/api/items/7", tc.body, hdr)
			if tc.noLength {
				h := r.HTTP
				h.Proto, h.ProtoMajor, h.ProtoMinor = "HTTP/2.0", 2, 0
				h.ContentLength = -1
				h.Header.Del("Content-Length")
			}
			v := f.Check(r)
			defer r.Finish()
			if got := map[bool]int{true: v.StatusCode()}[v.Deny]; got != tc.status {
				t.Fatalf("status %d (deny %v), want %d; rules %v, reason %q", got, v.Deny, tc.status, v.RuleIDs, v.Reason)
			}
			if tc.rule != 0 && !slices.Contains(v.RuleIDs, tc.rule) {
				t.Errorf("rules %v lack %d", v.RuleIDs, tc.rule)
			}
		})
	}
}

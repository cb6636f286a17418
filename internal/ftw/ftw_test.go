package ftw

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func scoring(id int) bool { return id == 949110 }

// TestFTWStrict: everything that would let a test pass without checking
// what it says is refused, with the line it is on.
func TestFTWStrict(t *testing.T) {
	const head = "meta: {author: x}\nrule_id: 1\ntests:\n  - test_id: 1\n    stages:\n"
	tests := []struct {
		name, stages string
		wantLine     int
		want         string
	}{
		{"unknown key in output", "      - input: {uri: /}\n        output:\n          status: 200\n          uris: [/a]\n", 9, `unknown field "uris"`},
		{"unknown key in input", "      - input:\n          uri: /\n          url: /x\n        output: {status: 200}\n", 8, `unknown field "url"`},
		{"output nested in input", "      - input:\n          uri: /\n          output: {status: 403}\n", 8, `unknown field "output"`},
		{"no output", "      - input: {uri: /}\n", 6, "stage has no output"},
		{"response needs albedo", "      - input: {uri: /, response: {status: 500}}\n        output: {status: 200}\n", 6, "response is not supported"},
		{"https", "      - input: {uri: /, protocol: https}\n        output: {status: 200}\n", 6, `protocol "https"`},
		{"bad regexp", "      - input: {uri: /}\n        output: {log: {no_match_regex: 'a('}}\n", 7, "log.no_match_regex"},
		{"isolated without one id", "      - input: {uri: /}\n        output: {isolated: true, log: {expect_ids: [1, 2]}}\n", 7, "isolated needs exactly one id"},
		{"data and encoded_data", "      - input: {data: a, encoded_data: YQ==}\n        output: {status: 200}\n", 6, "both data and encoded_data"},
		{"headers beside a whole request", "      - input: {encoded_request: R0VUIC8gSFRUUC8xLjANCg0K, headers: {A: b}}\n        output: {status: 200}\n", 6, "would not be sent"},
		{"legacy wrapper and input", "      - stage: {input: {uri: /}, output: {status: 200}}\n        input: {uri: /}\n", 6, "both the legacy stage: wrapper"},
		{"bad status", "      - input: {uri: /}\n        output: {status: 42}\n", 7, "status 42"},
		{"unknown template function", "      - input: {data: '{{ \"1\" | times 3 }}'}\n        output: {status: 200}\n", 6, `function "times" not defined`},
		{"repeat whose length overflows", "      - input: {data: '{{ \"ab\" | repeat 4611686018427387904 }}'}\n        output: {status: 200}\n", 6, "more than 1048576 bytes"},
		{"repeat beyond the bound", "      - input: {data: '{{ \"ab\" | repeat 600000 }}'}\n        output: {status: 200}\n", 6, "more than 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode("f.yaml", []byte(head+tc.stages))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrTest) {
				t.Errorf("%v does not wrap ErrTest", err)
			}
			prefix := "f.yaml:" + strconv.Itoa(tc.wantLine) + ": "
			if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q and %q", err, prefix, tc.want)
			}
		})
	}
}

// TestFTWForms: the legacy forms CRS files use decode to the same stage as
// the current one, and every key of the schema is accepted.
func TestFTWForms(t *testing.T) {
	legacy := "rule_id: 1\ntests:\n  - test_id: 1\n    stages:\n      - stage:\n          input: {uri: /a, method: POST, data: x=1}\n          output: {status: [200, 403], log: {expect_ids: [1]}}\n"
	f, err := Decode("l.yaml", []byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	st := f.Tests[0].Stages[0]
	if st.Input.URI == nil || *st.Input.URI != "/a" || len(st.Output.Status) != 2 || st.Output.Log.ExpectIDs[0] != 1 {
		t.Fatalf("legacy stage decoded as %+v", st)
	}
	every := `meta: {author: a, enabled: true, name: n, description: d, version: v1, tags: [x]}
rule_id: 1
tests:
  - test_title: 1-1
    test_id: 1
    desc: d
    tags: [t]
    stages:
      - description: s
        input:
          dest_addr: 127.0.0.1
          port: 80
          protocol: http
          uri: /
          version: HTTP/1.1
          method: POST
          ordered_headers: [{name: Host, value: a}, {name: Host, value: b}]
          encoded_data: eD0x
          save_cookie: true
          stop_magic: true
          autocomplete_headers: true
          virtual_host_mode: false
        output:
          status: 200
          response_contains: "HTTP/1.1"
          log_contains: "id"
          no_log_contains: "x"
          log: {expect_ids: [1], no_expect_ids: [2], match_regex: a, no_match_regex: b}
          expect_error: false
          retry_once: true
          isolated: true
`
	f, err = Decode("e.yaml", []byte(every))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.Tests[0].Stages[0].Input.Request()
	if err != nil {
		t.Fatal(err)
	}
	want := "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nx=1"
	if string(raw) != want {
		t.Fatalf("raw %q\nwant %q", raw, want)
	}
	if _, err := Decode("c.yaml", []byte("# comments only\n")); err != nil {
		t.Fatalf("a comments-only file: %v", err)
	}
}

// TestDataTemplate: data holding a go-ftw template is sent expanded, as
// CRS's 920400 writes its 64,200-byte upload; data without one is sent as
// it is, braces and all.
func TestDataTemplate(t *testing.T) {
	for _, tc := range []struct{ data, want string }{
		{"a\n{{ \"1\" | repeat 5 }}\nb\n", "a\n11111\nb\n"},
		{"{{ \"xy\" | repeat 0 }}", ""},
		{"x={a:{b}}", "x={a:{b}}"},
	} {
		in := Input{Data: &tc.data}
		got, err := in.body()
		if err != nil || got != tc.want {
			t.Errorf("body of data %q = %q, %v; want %q", tc.data, got, err, tc.want)
		}
	}
	data := `{{ "1" | repeat 64200 }}`
	in := Input{Data: &data}
	raw, err := in.Request()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "Content-Length: 64200\r\n") || !strings.HasSuffix(string(raw), "\r\n\r\n"+strings.Repeat("1", 64200)) {
		t.Fatalf("request %.200q… does not carry the 64,200 expanded bytes", raw)
	}
}

// TestPackTestAssertsNothing: a pack test whose output is empty is refused
// by the pack runner with FILE:LINE (a corpus file may have one).
func TestPackTestAssertsNothing(t *testing.T) {
	src := []byte("rule_id: 1\ntests:\n  - test_id: 1\n    stages:\n      - input: {uri: /}\n        output: {}\n")
	if _, err := Decode("c.yaml", src); err != nil {
		t.Fatalf("schema allows an empty output: %v", err)
	}
	if _, err := DecodePackTest("p.yaml", src); err == nil || !strings.Contains(err.Error(), "p.yaml:6: output asserts nothing") {
		t.Fatalf("pack test: %v", err)
	}
}

// TestFTWRunnerChecks: each assertion fails when what it states is false.
func TestFTWRunnerChecks(t *testing.T) {
	res := Result{Status: 403, Response: []byte("HTTP/1.1 403 Forbidden\r\n\r\nblocked"), IDs: []int{941100, 949110}, Logs: []string{`[id "941100"] XSS`}}
	tests := []struct {
		name string
		out  Output
		fail bool
	}{
		{"status ok", Output{Status: Status{403}}, false},
		{"status wrong", Output{Status: Status{200}}, true},
		{"expect id", Output{Log: Log{ExpectIDs: []int{941100}}}, false},
		{"expect missing id", Output{Log: Log{ExpectIDs: []int{942100}}}, true},
		{"no expect id that matched", Output{Log: Log{NoExpectIDs: []int{941100}}}, true},
		{"isolated, scoring aside", Output{Isolated: true, Log: Log{ExpectIDs: []int{941100}}}, false},
		{"response_contains", Output{ResponseContains: "blocked"}, false},
		{"response_contains absent", Output{ResponseContains: "welcome"}, true},
		{"log_contains", Output{LogContains: `id "941100"`}, false},
		{"no_log_contains", Output{NoLogContains: `id "941100"`}, true},
		{"expect_error on a 403", Output{ExpectError: true}, false},
	}
	for _, tc := range tests {
		if got := len(tc.out.Verify(res, scoring)) > 0; got != tc.fail {
			t.Errorf("%s: failed=%v, want %v (%v)", tc.name, got, tc.fail, tc.out.Verify(res, scoring))
		}
	}
	iso := Output{Isolated: true, Log: Log{ExpectIDs: []int{941100}}}
	res.IDs = append(res.IDs, 941160)
	if len(iso.Verify(res, scoring)) == 0 {
		t.Error("isolated passed with a second attack rule matching")
	}
}

// TestRunCookiesAndRetry: cookies of a stage with save_cookie reach the
// next stage, and retry_once sends a failed stage a second time.
func TestRunCookiesAndRetry(t *testing.T) {
	src := `rule_id: 1
tests:
  - test_id: 1
    stages:
      - input: {uri: /login, save_cookie: true}
        output: {status: 200}
      - input: {uri: /account}
        output: {status: 200, retry_once: true}
`
	f, err := Decode("r.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var sent []string
	send := func(raw []byte) Result {
		sent = append(sent, string(raw))
		if strings.HasPrefix(string(raw), "GET /login") {
			return Result{Status: 200, Cookies: []*http.Cookie{{Name: "sid", Value: "42"}}}
		}
		if len(sent) == 2 {
			return Result{Status: 503} // the first try of /account fails
		}
		return Result{Status: 200}
	}
	if why := f.Tests[0].Run(send, nil); len(why) != 0 {
		t.Fatalf("failed: %v", why)
	}
	if len(sent) != 3 || !strings.Contains(sent[2], "\r\nCookie: sid=42\r\n") {
		t.Fatalf("sent %q", sent)
	}
}

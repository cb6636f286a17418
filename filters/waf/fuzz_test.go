package waf

import (
	"bytes"
	"strings"
	"testing"
)

func TestSplitDirectives(t *testing.T) {
	src := "# comment\n\nSecRuleEngine On\nSecRule ARGS \"@rx a\" \\\n  \"id:1,phase:1,deny,chain\"\n  SecRule ARGS \"@rx b\" \"t:none\"\n\n  # indented comment\nSecAction \"id:2,pass\"\nSecDataset x `\na\nb\n`\n"
	got := splitDirectives(src)
	want := []directive{
		{3, "SecRuleEngine On"},
		{4, "SecRule ARGS \"@rx a\" \"id:1,phase:1,deny,chain\"\nSecRule ARGS \"@rx b\" \"t:none\""},
		{9, "SecAction \"id:2,pass\""},
		{10, "SecDataset x `\na\nb\n`"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("directive %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseFTWAndRawRequest(t *testing.T) {
	f, err := parseFTW([]byte(`rule_id: 7
tests:
  - test_id: 1
    stages:
      - input:
          method: POST
          uri: /x?a=1
          headers: {Host: localhost, User-Agent: t}
          data: "a=b"
        output:
          status: [200, 403]
          log: {expect_ids: [1, 2]}
  - test_id: 2
    stages:
      - input:
          encoded_request: "R0VUIC8gSFRUUC8xLjANCg0K"
        output:
          status: 400
`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := f.Tests[0].Stages[0].Input.rawRequest()
	if want := "POST /x?a=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"; string(raw) != want {
		t.Fatalf("raw %q\nwant %q", raw, want)
	}
	if st := f.Tests[0].Stages[0].Output.Status; len(st) != 2 || st[1] != 403 {
		t.Fatalf("status list %v", st)
	}
	raw, _ = f.Tests[1].Stages[0].Input.rawRequest()
	if string(raw) != "GET / HTTP/1.0\r\n\r\n" || f.Tests[1].Stages[0].Output.Status[0] != 400 {
		t.Fatalf("encoded %q", raw)
	}
	if _, err := parseFTW([]byte("tests:\n  - test_id: 1\n")); err == nil {
		t.Fatal("a test without stages must be refused")
	}
}

// FuzzParseFTW: any input either fails to parse or yields tests whose
// requests can be built; building never panics, and a built plain request
// starts with its method.
func FuzzParseFTW(f *testing.F) {
	f.Add([]byte("rule_id: 1\ntests:\n  - test_id: 1\n    stages:\n      - input: {method: GET, uri: /}\n        output: {status: 200}\n"))
	f.Add([]byte("tests:\n  - stages:\n      - input: {encoded_request: 'R0VUIC8gSFRUUC8xLjENCg0K'}\n        output: {log: {no_expect_ids: [1]}}\n"))
	f.Add([]byte("tests: [{stages: [{input: {headers: {A: 1, B: null}, data: x, autocomplete_headers: false}, output: {status: [1, 2]}}]}]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := parseFTW(src)
		if err != nil {
			return
		}
		for _, tc := range file.Tests {
			for _, st := range tc.Stages {
				raw, err := st.Input.rawRequest()
				if err != nil || st.Input.EncodedRequest != "" {
					continue
				}
				method := "GET"
				if st.Input.Method != nil {
					method = *st.Input.Method
				}
				if !bytes.HasPrefix(raw, []byte(method+" ")) {
					t.Fatalf("request %q does not start with %q", raw, method)
				}
			}
		}
	})
}

// FuzzSplitDirectives: directives come in file order with line numbers
// inside the file, and no text appears that was not in the file.
func FuzzSplitDirectives(f *testing.F) {
	f.Add("SecRule ARGS \"@rx a\" \"id:1,deny\"\n")
	f.Add("# c\nSecRule A \"b\" \\\n  \"id:1,chain\"\n SecRule B \"c\" \"t:none\"\n")
	f.Add("SecDataset x `\na\n`\nSecAction \"id:2\"")
	f.Add("\\\n\\\n`")
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		prev := 0
		for _, d := range splitDirectives(src) {
			if d.line < 1 || d.line > lines || d.line < prev {
				t.Fatalf("line %d out of order or range (prev %d, %d lines)", d.line, prev, lines)
			}
			prev = d.line
			if strings.TrimSpace(d.text) == "" {
				t.Fatalf("empty directive at line %d", d.line)
			}
		}
	})
}

// FuzzPackMeta: pack.yaml decoding never panics, and success means a name.
func FuzzPackMeta(f *testing.F) {
	f.Add([]byte("name: api-hardening\nversion: 1.0.0\ndescription: x\n"))
	f.Add([]byte("name: x\nextra: 1\n"))
	f.Add([]byte("version: 2\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parsePackMeta(raw)
		if err == nil && strings.TrimSpace(m.Name) == "" {
			t.Fatal("accepted a pack without a name")
		}
	})
}

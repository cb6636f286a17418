package ftw

import (
	"bytes"
	"strings"
	"testing"
)

func TestDecodeAndRequest(t *testing.T) {
	f, err := Decode("", []byte(`rule_id: 7
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
	raw, _ := f.Tests[0].Stages[0].Input.Request()
	if want := "POST /x?a=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"; string(raw) != want {
		t.Fatalf("raw %q\nwant %q", raw, want)
	}
	if st := f.Tests[0].Stages[0].Output.Status; len(st) != 2 || st[1] != 403 {
		t.Fatalf("status list %v", st)
	}
	raw, _ = f.Tests[1].Stages[0].Input.Request()
	if string(raw) != "GET / HTTP/1.0\r\n\r\n" || f.Tests[1].Stages[0].Output.Status[0] != 400 {
		t.Fatalf("encoded %q", raw)
	}
	if _, err := Decode("", []byte("tests:\n  - test_id: 1\n")); err == nil {
		t.Fatal("a test without stages must be refused")
	}
}

// FuzzDecode: any input either fails to decode or yields tests whose
// stages all have an input and an output and no legacy wrapper left, whose
// requests can be built (never panicking), a plain one starting with its
// method; and a decoded file is one DecodePackTest accepts or refuses
// with FILE:LINE.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("rule_id: 1\ntests:\n  - test_id: 1\n    stages:\n      - input: {method: GET, uri: /}\n        output: {status: 200}\n"))
	f.Add([]byte("tests:\n  - stages:\n      - input: {encoded_request: 'R0VUIC8gSFRUUC8xLjENCg0K'}\n        output: {log: {no_expect_ids: [1]}}\n"))
	f.Add([]byte("tests: [{stages: [{input: {headers: {A: 1, B: null}, data: x, autocomplete_headers: false}, output: {status: [1, 2]}}]}]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file, err := Decode("", src)
		if err != nil {
			return
		}
		if _, err := DecodePackTest("p.yaml", src); err != nil && !strings.HasPrefix(err.Error(), "p.yaml:") {
			t.Fatalf("pack test error without FILE:LINE: %v", err)
		}
		for _, tc := range file.Tests {
			for _, st := range tc.Stages {
				if st.Input.line == 0 || st.Output.line == 0 || st.Stage != nil {
					t.Fatalf("stage %+v decoded without input, output, or with its wrapper", st)
				}
				raw, err := st.Input.Request()
				if err != nil || st.Input.EncodedRequest != "" || st.Input.RawRequest != nil {
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

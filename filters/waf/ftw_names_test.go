package waf

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/internal/ftw"
)

// The stage's tests (the CRS regression suite, the differential test)
// read go-ftw files through internal/ftw under these names.
type (
	ftwFile   = ftw.File
	ftwStage  = ftw.Stage
	ftwInput  = ftw.Input
	ftwOutput = ftw.Output
	ftwLog    = ftw.Log
	ftwStatus = ftw.Status
)

// parseFTW decodes one test file; errors name lines only.
func parseFTW(src []byte) (ftw.File, error) { return ftw.Decode("", src) }

// ftwServer is the stage served to go-ftw tests by internal/ftw, with the
// rules each transaction matched reported through ReportMatches.
type ftwServer struct{ *ftw.Server }

// ftwResult is the outcome of one stage of a go-ftw test.
type ftwResult struct {
	status int      // 0: no response
	ids    []int    // the logged rules the transaction matched
	failed []string // why it failed; empty: passed
}

// startFTWServer serves f in front of ftw.Echo, as CRS's tests expect.
func startFTWServer(f *Filter) (*ftwServer, error) { return startStageServer(f, nil) }

// startStageServer serves f in front of upstream (ftw.Echo when nil).
func startStageServer(f *Filter, upstream http.Handler) (*ftwServer, error) {
	s := ftw.NewServer(f, upstream)
	f.ReportMatches(s.Finished)
	if err := s.Start(); err != nil {
		return nil, err
	}
	return &ftwServer{s}, nil
}

func (s *ftwServer) close() { _ = s.Close() }

// run sends one stage's request and checks its outcome.
func (s *ftwServer) run(st ftw.Stage) ftwResult {
	res := st.Run(s.Send, nil, ReportingRule)
	return ftwResult{status: res.Status, ids: res.IDs, failed: res.Failed}
}

// packTests runs the go-ftw tests of the pack in dir through s, which
// serves the pack, failing t for each test that fails; it returns how many
// passed.
func (s *ftwServer) packTests(t *testing.T, dir string) (passed int) {
	t.Helper()
	p, err := LoadPack("", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range p.Tests {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tests, err := ftw.DecodePackTest(file, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range tests.Tests {
			if why := tc.Run(s.Send, ReportingRule); len(why) > 0 {
				t.Errorf("%s %d-%d: %s", file, tests.RuleID, tc.TestID, strings.Join(why, "; "))
				continue
			}
			passed++
		}
	}
	return passed
}

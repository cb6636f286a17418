package waf

import "github.com/edgeguard/edgeguard/internal/ftw"

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

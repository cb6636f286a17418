package config

import (
	"errors"
	"slices"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/goccy/go-yaml/ast"
)

// source is the file a Config was parsed from: its name and its tree,
// which place a problem found later (a stage that fails to build) at the
// line of the key it is about, as Parse places its own.
type source struct {
	name    string
	root    ast.Node
	refused []string // fields Parse reported problems at (a draft's)
}

// Draft returns the file as far as Parse could read it despite its
// problems, or nil when it could not be decoded at all (a syntax error).
// A refused value is unset in it, and Refused names what was refused.
// It is for a checker that reports every problem of a file in one run:
// building the draft's sound stages finds what only building can (a pack
// that does not compile, a list that does not parse) beside what Parse
// found. A draft never serves: it does not pass Validate.
func (e *Error) Draft() *Config { return e.draft }

// With returns e with the problems of err added, in line order: err is an
// *Error (from Locate), or any other error, reported at the top of e's
// file. A nil err adds nothing.
func (e *Error) With(err error) *Error {
	if err == nil {
		return e
	}
	out := &Error{Problems: slices.Clone(e.Problems), draft: e.draft}
	var more *Error
	switch {
	case errors.As(err, &more):
		out.Problems = append(out.Problems, more.Problems...)
	case len(e.Problems) > 0:
		out.Problems = append(out.Problems, Problem{File: e.Problems[0].File, Line: 1, Msg: err.Error()})
	default:
		out.Problems = append(out.Problems, Problem{Line: 1, Msg: err.Error()})
	}
	slices.SortStableFunc(out.Problems, func(a, b Problem) int { return a.Line - b.Line })
	return out
}

// Refused reports whether Parse reported a problem at field (a path from
// the top of the file, "waf" or "route_stages./login.waf"), inside it or
// at a block that holds it: the settings there are not what the file
// says. Always false for a Config that Parse accepted.
func (c *Config) Refused(field string) bool {
	return c.src != nil && overlaps(field, c.src.refused)
}

// Locate places err, a problem found with c after Parse (a stage that
// failed to build), in the file c was parsed from: it returns an *Error
// with each *filters.FieldError of err at the line of its field, its path
// from the top of the file. A leaf that is not a field error is the file's
// and goes to its top. A Config built in code has no file, and err comes
// back as it is.
func (c *Config) Locate(err error) error {
	if err == nil || c.src == nil {
		return err
	}
	var ps []Problem
	for _, fe := range filters.FieldErrors(err) {
		if fe.Field == "" {
			ps = append(ps, Problem{File: c.src.name, Line: lineOf(c.src.root, ""), Msg: fe.Err.Error()})
			continue
		}
		ps = append(ps, Problem{File: c.src.name, Line: fieldLine(c.src.root, fe.Field), Msg: fe.Error()})
	}
	slices.SortStableFunc(ps, func(a, b Problem) int { return a.Line - b.Line })
	return &Error{Problems: ps}
}

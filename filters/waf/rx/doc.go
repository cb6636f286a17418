// Package rx owns the @rx operator of the WAF: RE2 matching with a
// conservative literal prefilter, decision-identical to Coraza's own @rx.
//
// Coraza compiles @rx with Go's regexp, whose matcher costs most of a CRS
// evaluation. This package compiles each pattern with RE2
// (github.com/wasilibs/go-re2, the pure-Go build) and, when the rule does
// not capture, asks only whether it matches. Two things would make RE2 and
// Go's regexp disagree, and for them Go's regexp still decides:
//
//   - input that is not valid UTF-8: Go reads each bad byte as U+FFFD and
//     RE2 does not (CRS rules 920250, 920490, 942460 and 921170 see such
//     input in their own tests);
//   - input outside ASCII matched by a pattern whose meaning outside ASCII
//     depends on Unicode tables (case folding, non-ASCII classes): the two
//     engines may carry different Unicode versions.
//
// Patterns that match bytes which are not UTF-8 go to rsc.io/binaryregexp,
// as in Coraza, and patterns RE2 refuses stay on Go's regexp.
//
// Before any engine runs, a prefilter derived from the pattern's syntax
// tree checks literals that every match must contain (for example, any
// match of (?i)union\s+select contains "union" and "elect"). It may answer
// "maybe" where the regexp then finds nothing; it never answers "no" where
// the regexp would match. FuzzPrefilter and the CRS tests hold it to that.
package rx

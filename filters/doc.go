// Package filters is the leaf every stage imports: the Request a stage
// inspects, the Verdict it returns, the Filter interface, the Chain that runs
// stages in order, and the small value types (Mode, Rate, Size, Duration)
// that stage configs share.
//
// It imports only the standard library, so any stage may depend on it and it
// depends on none of them; anything two stages must agree on lives here.
package filters

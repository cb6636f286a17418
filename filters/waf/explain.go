package waf

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/types"
	"github.com/edgeguard/edgeguard/filters"
)

// maxMatchedData bounds the matched value explain shows: enough to see
// which part of a value tripped a rule, never a whole body.
const maxMatchedData = 80

// noteMatches notes each logged rule tx matched, for explain: its id,
// severity, the variable and the matched value (truncated), and its
// message, as "RULE severity=S VAR:KEY="DATA" MESSAGE". Explain's reader
// triages a false positive from these.
func noteMatches(r *filters.Request, tx types.Transaction) {
	for _, mr := range tx.MatchedRules() {
		if !ruleLogged(mr) {
			continue
		}
		var b strings.Builder
		b.WriteString(strconv.Itoa(mr.Rule().ID()))
		b.WriteString(" severity=")
		b.WriteString(mr.Rule().Severity().String())
		for _, md := range mr.MatchedDatas() {
			b.WriteByte(' ')
			b.WriteString(md.Variable().Name())
			if md.Key() != "" {
				b.WriteByte(':')
				b.WriteString(md.Key())
			}
			b.WriteByte('=')
			b.WriteString(strconv.Quote(truncate(md.Value(), maxMatchedData)))
		}
		b.WriteByte(' ')
		b.WriteString(mr.Message())
		r.Annotate(Name, b.String())
	}
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

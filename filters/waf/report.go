package waf

import (
	"github.com/corazawaf/coraza/v3/types"

	"github.com/edgeguard/edgeguard/filters"
)

// ReportMatches makes f call report as each transaction ends, with the
// rules it matched that write to the log (in match order) and their log
// lines: what a regression test checks a stage's decision against
// (filters/waf/packtest, internal/ftw). Call it before f serves a request;
// it replaces an earlier report.
func (f *Filter) ReportMatches(report func(r *filters.Request, ids []int, logs []string)) {
	f.onFinish = func(r *filters.Request, matched []types.MatchedRule) {
		var ids []int
		var logs []string
		for _, mr := range matched {
			if ruleLogged(mr) {
				ids = append(ids, mr.Rule().ID())
				logs = append(logs, mr.ErrorLog())
			}
		}
		report(r, ids, logs)
	}
}

// ReportingRule reports whether id is one of the rules that sum up or
// report on the others (CRS's blocking evaluation and correlation rules,
// edgeguard's early blocking), which match along with any attack rule: a
// test that expects one rule alone (go-ftw's isolated) ignores them.
func ReportingRule(id int) bool {
	return isScoreRule(id) || (id >= 980000 && id < 981000)
}

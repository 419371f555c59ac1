package main

import (
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
)

func TestVerdict(t *testing.T) {
	c := config{maxRSSGrowthPct: 30, maxRSSGrowthMiB: 20, maxGoroutineGrowth: 10}
	const mb = 1 << 20
	w := func(i int, rss int64, g, errs int) row {
		return row{Window: i, RSS: rss * mb, Goroutines: g, Result: load.Result{Requests: 12000, Errors: errs}}
	}
	for _, tc := range []struct {
		name string
		rows []row
		want []string // substrings, one per problem; none: pass
	}{
		{"steady", []row{w(1, 60, 40, 0), w(2, 62, 41, 0), w(3, 61, 40, 0)}, nil},
		{"an error", []row{w(1, 60, 40, 0), w(2, 60, 40, 1)}, []string{"1 of 24000 admissions failed"}},
		{"+40% but only +16 MiB", []row{w(1, 40, 40, 0), w(2, 56, 40, 0)}, nil},
		{"+25 MiB but only +12.5%", []row{w(1, 200, 40, 0), w(2, 225, 40, 0)}, nil},
		{"+50 MiB and +50%", []row{w(1, 100, 40, 0), w(2, 150, 40, 0)}, []string{"RSS grew"}},
		{"goroutines +11", []row{w(1, 60, 40, 0), w(2, 60, 51, 0)}, []string{"goroutines grew"}},
		{"goroutines +10", []row{w(1, 60, 40, 0), w(2, 60, 50, 0)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := verdict(c, tc.rows)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %q lacks %q", got[i], tc.want[i])
				}
			}
		})
	}
}

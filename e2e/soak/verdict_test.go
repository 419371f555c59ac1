package main

import (
	"strings"
	"testing"
	"time"

	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
)

func TestVerdict(t *testing.T) {
	// 200/s over 1-minute windows: 12000 requests due per window.
	c := config{rate: 200, window: time.Minute, maxRSSGrowthPct: 30, maxRSSGrowthMiB: 20, maxGoroutineGrowth: 10}
	const mb = 1 << 20
	w := func(i int, rss int64, g, errs int) row {
		return row{Window: i, RSS: rss * mb, Goroutines: g, Result: load.Result{Requests: 12000, Errors: errs}}
	}
	sent := func(r row, requests int) row {
		r.Result.Requests = requests
		return r
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
		{"nothing sent", []row{sent(w(1, 60, 40, 0), 0), sent(w(2, 60, 40, 0), 0)},
			[]string{"window 1: 0 admissions answered correctly, want at least 10800", "window 2: 0 admissions"}},
		{"a window with half the load", []row{w(1, 60, 40, 0), sent(w(2, 60, 40, 0), 6000)}, []string{"window 2: 6000 admissions answered correctly"}},
		{"90% sent", []row{sent(w(1, 60, 40, 0), 10800), w(2, 60, 40, 0)}, nil},
		{"errors leave too few answered", []row{w(1, 60, 40, 0), w(2, 60, 40, 2000)},
			[]string{"2000 of 24000 admissions failed", "window 2: 10000 admissions answered correctly"}},
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

func TestCountOpen(t *testing.T) {
	// Port 8443 = 0x20FB. The listener (0A), an established and a CLOSE_WAIT connection on the
	// server's side, a TIME_WAIT one (no goroutine left), and the client's end of a connection
	// (its local port is ephemeral).
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:20FB 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0100007F:20FB 0100007F:C351 08 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 0100007F:20FB 0100007F:C352 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   4: 0100007F:C350 0100007F:20FB 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1
`
	if got := countOpen(tcp, 8443); got != 2 {
		t.Errorf("countOpen = %d, want 2", got)
	}
	if got := countOpen(tcp, 9443); got != 0 {
		t.Errorf("countOpen on another port = %d, want 0", got)
	}
}

#!/usr/bin/env bash
# Runs runtimeguard's benchmarks end to end and writes bin/bench/report.md (docs/benchmarks.md
# explains the numbers). `make bench` calls it. Everything runs on this machine: the servers
# listen on 127.0.0.1, the load generator refuses other addresses, every run is bounded.
#
# Knobs (environment): BENCH_ROUNDS (3), BENCH_REQUESTS (8000 per c=8 round),
# BENCH_NODES / BENCH_NAMESPACES (5000 / 10000, the real API server part), BENCH_SKIP
# (space-separated parts to skip: gobench http placement scaling cluster native profile), BENCHTIME (go test -benchtime, 500ms).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=${BIN:-$root/bin}
out=$bin/bench
GO=${GO:-go}
rounds=${BENCH_ROUNDS:-3}
requests=${BENCH_REQUESTS:-8000}
nodes=${BENCH_NODES:-5000}
namespaces=${BENCH_NAMESPACES:-10000}
skip=" ${BENCH_SKIP:-} "
benchtime=${BENCHTIME:-500ms}
mkdir -p "$out/logs"
report=$out/report.md

SECONDS=0
step() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
wants() { [[ $skip != *" $1 "* ]]; }

step "building the tools (cached by make tools), runtimeguard, the Go contenders and the runner"
e2e/tools/build.sh --for bench
# The baseline is built exactly like the product binary, so only the code differs.
CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w" -o "$bin/runtimeguard" ./cmd/runtimeguard
CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w" -o "$bin/bench-baseline" ./e2e/bench/baseline
CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w" -o "$bin/bench-minimal" ./e2e/bench/minimal
CGO_ENABLED=0 $GO build -trimpath -o "$bin/bench-runner" ./e2e/bench/runner
CGO_ENABLED=0 $GO build -trimpath -o "$bin/loadgen" ./e2e/bench/loadgen
"$bin/runtimeguard" dev-certs --dir "$out/certs" >/dev/null

{
	echo "# runtimeguard benchmark report"
	echo
	echo "- command: \`make bench\` (e2e/bench/run.sh; BENCH_ROUNDS=$rounds BENCH_REQUESTS=$requests BENCH_NODES=$nodes BENCH_NAMESPACES=$namespaces)"
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "- machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; $($GO version | cut -d' ' -f3-)"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other builds and tests share the machine: CPU per admission is charged from /proc, not derived from throughput)"
} >"$report"

common=(--bin "$bin" --out "$out" --certs "$out/certs")

if wants gobench; then
	step "Go benchmarks of the decision path: go test -run '^\$' -bench . -benchmem ./webhook/..."
	if $GO test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./webhook/... >"$out/gobench.txt" 2>&1; then
		{
			echo
			echo "### Go benchmarks of the decision path (\`go test -bench . -benchmem ./webhook/...\`)"
			echo
			if grep -q '^Benchmark' "$out/gobench.txt"; then
				echo '```'
				grep -E '^(pkg:|Benchmark)' "$out/gobench.txt"
				echo '```'
			else
				echo "No Go benchmarks in ./webhook/... yet."
			fi
		} | tee -a "$report"
	else
		cat "$out/gobench.txt" >&2
		echo "go test -bench failed" >&2
		exit 1
	fi
fi

if wants http; then
	step "webhook servers: runtimeguard, Go baseline, minimal webhook, opa run --server ($rounds interleaved rounds)"
	"$bin/bench-runner" http "${common[@]}" --rounds "$rounds" --requests "$requests" 2> >(tee "$out/logs/http.log" >&2) | tee -a "$report"
fi

if wants placement; then
	step "placement mixes at $nodes nodes, $namespaces namespaces: runtimeguard, the Go baseline and the minimal webhook ($rounds interleaved rounds)"
	"$bin/bench-runner" placement "${common[@]}" --rounds "$rounds" --requests "$requests" --nodes "$nodes" --namespaces "$namespaces" 2> >(tee "$out/logs/placement.log" >&2) | tee -a "$report"
fi

if wants scaling; then
	step "decision cost against cluster size"
	"$bin/bench-runner" scaling "${common[@]}" --rounds "$rounds" 2> >(tee "$out/logs/scaling.log" >&2) | tee -a "$report"
fi

if wants cluster; then
	step "start-up and memory against a real kube-apiserver ($nodes nodes, $namespaces namespaces)"
	"$bin/bench-runner" cluster "${common[@]}" --nodes "$nodes" --namespaces "$namespaces" 2> >(tee "$out/logs/cluster.log" >&2) | tee -a "$report"
fi

if wants native; then
	step "Pod create latency at a real kube-apiserver: no policy, the webhook, the native admission policies ($rounds interleaved rounds)"
	"$bin/bench-runner" native "${common[@]}" --rounds "$rounds" 2> >(tee "$out/logs/native.log" >&2) | tee -a "$report"
fi

if wants profile; then
	step "where a call's CPU goes: runner profile (the handler serve registers, in-process, under pprof)"
	{
		echo
		echo "### Where an admission's CPU goes (\`bench-runner profile\`: webhook.NewHandler around the Pipeline as serve wires it, in-process, no TLS; 100 nodes)"
		for args in "--mix template" "--mix template --validate" "--unique --n 5000" "--mix realistic --n 10000"; do
			echo
			echo "#### \`bench-runner profile $args\`"
			echo
			# shellcheck disable=SC2086 # args is a list of flags
			"$bin/bench-runner" profile $args 2>"$out/logs/profile.log"
		done
	} | tee -a "$report"
fi

echo >>"$report"
echo "Total time: ${SECONDS}s." >>"$report"
step "done in ${SECONDS}s; report: $report"

#!/usr/bin/env bash
# govulncheck against a vulnerability database built here, offline: this workplace reaches the
# Go module proxy but not vuln.go.dev, and the golang.org/x/vulndb module carries every Go
# report as OSV JSON (data/osv). Its own cmd/indexdb turns that folder into the database layout
# `govulncheck -db file://DIR` reads (index/db.json, index/modules.json, index/vulns.json,
# ID/<id>.json). Both tools are pinned and built from the module proxy into bin/, and the database
# is cached in bin/vulndb/; each is rebuilt only when its pinned version changes.
#
# Usage: e2e/tools/vuln/run.sh [govulncheck arguments]   (default: ./...)
# Exit status is govulncheck's: 0 no vulnerability reached, 3 some reached.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
bin=${BIN:-$root/bin}
mkdir -p "$bin"

GOVULNCHECK_VERSION=v1.9.0
# The vulndb module is versioned by commit; its pseudo-version's time is the data's date.
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018

step() { printf '==> %s\n' "$*" >&2; }
fresh() { [ "$(cat "$bin/.$1.version" 2>/dev/null)" = "$2" ] && [ -e "$3" ]; }
stamp() { echo "$2" >"$bin/.$1.version"; }

if ! fresh govulncheck "$GOVULNCHECK_VERSION" "$bin/govulncheck"; then
	step "building govulncheck $GOVULNCHECK_VERSION"
	GOBIN="$bin" go install -trimpath "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
	stamp govulncheck "$GOVULNCHECK_VERSION"
fi

db=$bin/vulndb
if ! fresh vulndb "$VULNDB_VERSION" "$db/index/modules.json"; then
	if ! fresh vulndb-indexdb "$VULNDB_VERSION" "$bin/indexdb"; then
		step "building golang.org/x/vulndb/cmd/indexdb $VULNDB_VERSION (cold: ~2 min)"
		GOBIN="$bin" go install -trimpath "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION"
		stamp vulndb-indexdb "$VULNDB_VERSION"
	fi
	src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src/data/osv" ] || { echo "golang.org/x/vulndb@$VULNDB_VERSION has no data/osv" >&2; exit 1; }
	step "building the vulnerability database from $(find "$src/data/osv" -name '*.json' | wc -l) OSV reports"
	rm -rf "$db.tmp"
	"$bin/indexdb" -vulns "$src/data/osv" -out "$db.tmp"
	# The OSV files in the module carry no modification times (the vulndb generator takes them
	# from git history), so indexdb writes the zero time; record the data's date instead.
	t=${VULNDB_VERSION#v0.0.0-}; t=${t%%-*}
	printf '{"modified":"%s-%s-%sT%s:%s:%sZ"}' "${t:0:4}" "${t:4:2}" "${t:6:2}" "${t:8:2}" "${t:10:2}" "${t:12:2}" >"$db.tmp/index/db.json"
	gzip -kf "$db.tmp/index/db.json"
	rm -rf "$db"
	mv "$db.tmp" "$db"
	stamp vulndb "$VULNDB_VERSION"
fi

[ $# -gt 0 ] || set -- ./...
cd "$root"
step "govulncheck -db file://$db $* (Go $(go env GOVERSION))"
exec "$bin/govulncheck" -db "file://$db" "$@"

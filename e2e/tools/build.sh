#!/usr/bin/env bash
# Builds the pinned tools the tests and the demo need into bin/ (git-ignored), from the Go
# module proxy. Each tool is rebuilt only when its pinned version changes (a stamp file records
# what was built).
# Usage: e2e/tools/build.sh --for ENTRY     the tools e2e/tools/tools.txt lists for ENTRY (demo,
#                                          e2e, unit, lint, opa-test, bench): what `make ENTRY` runs
#        e2e/tools/build.sh --list ENTRY    print those tools, one per line, and build nothing
#        e2e/tools/build.sh [kube|etcd|opa|helm|certmanager|all]...
# With TOOLS_DRY_RUN=1 nothing is built or copied: each module is reported as fresh, cached or
# to build, followed by "provides <binary>" lines (e2e/tools's check reads them).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-$root/bin}
mkdir -p "$bin"

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
OPA_VERSION=v1.22.3
HELM_VERSION=v3.22.0
CERT_MANAGER_VERSION=v1.21.2

# Built binaries are also kept in a cache under $HOME keyed by tool and version, so a fresh
# clone on the same machine (CI) copies them instead of relinking 170 MB binaries.
cache=${RUNTIMEGUARD_TOOLS_CACHE:-$HOME/.cache/runtimeguard-tools}

# fresh NAME VERSION FILES...: true when every file exists and the stamp says VERSION, or when
# the cache under $HOME has them (then they are copied into bin/).
fresh() {
	local name=$1 version=$2; shift 2
	local ok=1
	if [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$version" ]; then
		for f in "$@"; do [ -x "$bin/$f" ] || ok=0; done
		[ $ok = 1 ] && return 0
	fi
	local dir=$cache/$name-$version
	for f in "$@"; do [ -x "$dir/$f" ] || return 1; done
	for f in "$@"; do cp "$dir/$f" "$bin/$f.tmp" && mv "$bin/$f.tmp" "$bin/$f"; done
	echo "$version" >"$bin/.$name.version"
	step "$name $version: copied from $dir"
}
# stamp NAME VERSION FILES...: records the version and stores the binaries in the cache.
stamp() {
	local name=$1 version=$2; shift 2
	echo "$version" >"$bin/.$name.version"
	local dir=$cache/$name-$version
	mkdir -p "$dir"
	for f in "$@"; do cp "$bin/$f" "$dir/$f.tmp" && mv "$dir/$f.tmp" "$dir/$f"; done
}
step() { printf '==> %s\n' "$*" >&2; }

# run_with_progress LABEL CMD...: prints a heartbeat every 30 s, since a cold Kubernetes build
# takes over ten minutes and silence looks like a hang.
run_with_progress() {
	local label=$1; shift
	local start=$SECONDS
	"$@" &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
		kill -0 "$pid" 2>/dev/null && step "$label: still building ($((SECONDS - start))s)"
	done
	wait "$pid"
	step "$label: done in $((SECONDS - start))s"
}

build_kube() {
	if fresh kube "$KUBE_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl; then return; fi
	step "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBE_VERSION (cold: ~15 min on 2 cores)"
	local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
	local ld="-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1"
	ld+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
	(cd "$root/e2e/tools/kube" && run_with_progress kube go build -trimpath -ldflags "$ld" -o "$bin/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
		k8s.io/kubernetes/cmd/kubectl)
	stamp kube "$KUBE_VERSION" kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_etcd() {
	if fresh etcd "$ETCD_VERSION" etcd; then return; fi
	step "building etcd $ETCD_VERSION (cold: ~3 min)"
	(cd "$root/e2e/tools/etcd" && run_with_progress etcd go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
	stamp etcd "$ETCD_VERSION" etcd
}

build_opa() {
	if fresh opa "$OPA_VERSION" opa; then return; fi
	step "building opa $OPA_VERSION (cold: ~3 min)"
	run_with_progress opa env GOBIN="$bin" go install -trimpath -ldflags "-s -w" "github.com/open-policy-agent/opa@$OPA_VERSION"
	stamp opa "$OPA_VERSION" opa
}

build_helm() {
	if fresh helm "$HELM_VERSION" helm; then return; fi
	step "building helm $HELM_VERSION (cold: ~6 min)"
	# Without these -X flags Helm believes the cluster is Kubernetes v1.20.
	local h=helm.sh/helm/v3 minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
	local ld="-s -w -X $h/internal/version.version=$HELM_VERSION -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=$minor"
	ld+=" -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=$minor"
	run_with_progress helm env GOBIN="$bin" go install -trimpath -ldflags "$ld" "$h/cmd/helm@$HELM_VERSION"
	stamp helm "$HELM_VERSION" helm
}

build_certmanager() {
	if fresh certmanager "$CERT_MANAGER_VERSION" cert-manager-lite; then return; fi
	step "building cert-manager controller + cainjector $CERT_MANAGER_VERSION (cold: ~6 min)"
	(cd "$root/e2e/tools/certmanager" && run_with_progress cert-manager go build -trimpath -ldflags "-s -w" -o "$bin/cert-manager-lite" .)
	stamp certmanager "$CERT_MANAGER_VERSION" cert-manager-lite
}

# module_of BINARY: the pinned module (build_<module>) that builds BINARY.
module_of() {
	case $1 in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl) echo kube ;;
	etcd) echo etcd ;;
	opa) echo opa ;;
	helm) echo helm ;;
	cert-manager-lite) echo certmanager ;;
	*) echo "e2e/tools/tools.txt names $1, which no module here builds (add it to module_of in $0)" >&2; return 1 ;;
	esac
}
# listed ENTRY: the tools tools.txt lists for ENTRY.
listed() {
	local line
	line=$(sed -e 's/#.*//' "$root/e2e/tools/tools.txt" | grep -E "^[[:space:]]*$1[[:space:]]*:" || true)
	if [ -z "$line" ]; then
		echo "entry point $1 is not in e2e/tools/tools.txt (have: $(sed -e 's/#.*//' "$root/e2e/tools/tools.txt" | grep -oE '^[a-z0-9-]+' | tr '\n' ' '))" >&2
		return 2
	fi
	echo "${line#*:}" | tr -s ' \t' '\n' | grep -v '^$'
}
# Dry run: report instead of building.
if [ "${TOOLS_DRY_RUN:-}" = 1 ]; then
	fresh() {
		local name=$1 version=$2; shift 2
		local state=build
		if [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$version" ]; then state=fresh; fi
		for f in "$@"; do [ -x "$bin/$f" ] || state=build; done
		if [ $state = build ]; then
			state=cached
			for f in "$@"; do [ -x "$cache/$name-$version/$f" ] || state=build; done
		fi
		echo "$name $version: $state"
		for f in "$@"; do echo "provides $f"; done
		return 0
	}
fi

targets=()
while [ $# -gt 0 ]; do
	case $1 in
	--for | --list)
		[ $# -ge 2 ] || { echo "$1 needs an entry point (see e2e/tools/tools.txt)" >&2; exit 2; }
		names=$(listed "$2") || exit 2
		if [ "$1" = --list ]; then echo "$names"; exit 0; fi
		for n in $names; do
			m=$(module_of "$n") || exit 2
			case " ${targets[*]-} " in *" $m "*) ;; *) targets+=("$m") ;; esac
		done
		shift 2 ;;
	*) targets+=("$1"); shift ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=(all)
for t in "${targets[@]}"; do
	case $t in
	all) build_etcd; build_opa; build_kube; build_helm; [ -d "$root/e2e/tools/certmanager" ] && build_certmanager ;;
	kube | etcd | opa | helm | certmanager) "build_$t" ;;
	*) echo "unknown tool $t (want kube, etcd, opa, helm, certmanager, all)" >&2; exit 2 ;;
	esac
done

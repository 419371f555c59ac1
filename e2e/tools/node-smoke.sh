#!/usr/bin/env bash
# Smoke test of a real node's runtime (issue 15), from the tools `e2e/tools/build.sh node` built:
# starts containerd with the CRI handlers runc, runsc (gVisor) and one whose shim is absent,
# imports the offline images, runs a pod sandbox with `crictl runp --runtime runsc` and a busybox
# container in it printing /proc/version (gVisor's, not the host's), then tears everything down.
# Usage (root): e2e/tools/node-smoke.sh
#
# The host is left as it was: everything lives in a temp dir; containerd runs in a private mount
# namespace whose /run is a tmpfs (containerd always writes /run/containerd/{s,fifo}, and the
# container mounts stay in there); no sysctl is written; the sandbox has no network (runsc
# network=none, host network namespace so no CNI); restrict_oom_score_adj because this machine
# cannot lower oom_score_adj; pod cgroups live under one parent removed at the end; each process
# started is stopped by its PID.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-$root/bin}
step() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" != --inside ]; then
	[ "$(id -u)" = 0 ] || fail "containerd needs root: run as root"
	for f in containerd containerd-shim-runc-v2 ctr runc runsc containerd-shim-runsc-v1 crictl pause.oci.tar busybox.oci.tar; do
		[ -e "$bin/$f" ] || fail "missing $bin/$f: run e2e/tools/build.sh node"
	done
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/node-smoke.XXXXXX")
	cgroup=runtimeguard-node-smoke-${tmp##*.}
	cleanup() {
		# Anything still running from the temp dir (a shim, a sandbox) is stopped by PID.
		local p left=()
		for p in /proc/[0-9]*; do
			[ "${p#/proc/}" = $$ ] && continue
			if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$tmp"; then left+=("${p#/proc/}"); fi
		done
		if [ ${#left[@]} -gt 0 ]; then
			step "stopping leftover processes ${left[*]}"
			kill -KILL "${left[@]}" 2>/dev/null || true
			sleep 1
		fi
		# The pod cgroups: children first (rmdir only removes empty cgroups).
		find /sys/fs/cgroup -depth -type d -path "*/$cgroup*" -exec rmdir {} + 2>/dev/null || true
		rm -rf "$tmp"
		if find /sys/fs/cgroup -type d -path "*/$cgroup*" 2>/dev/null | grep -q .; then
			echo "WARNING: cgroups left under $cgroup" >&2
		fi
	}
	trap cleanup EXIT
	# The inner run gets its own mount namespace: its mounts, /run included, die with it.
	unshare -m --propagation private -- "$0" --inside "$tmp" "$cgroup"
	exit
fi

tmp=$2 cgroup=$3
export PATH=$bin:$PATH # containerd finds the shims (containerd-shim-*-v*) on PATH
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p "$tmp/logs" "$tmp/cni" "$tmp/certs.d" "$tmp/runc" "$tmp/runsc"
sock=$tmp/containerd.sock

cat >"$tmp/runsc.toml" <<EOF
binary_name = "$bin/runsc"
root = "$tmp/runsc"
[runsc_config]
  platform = "systrap"
  network = "none"
EOF
cat >"$tmp/config.toml" <<EOF
version = 3
root = "$tmp/root"
state = "$tmp/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "$tmp/opt"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "registry.k8s.io/pause:3.10.2"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$tmp/certs.d"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$tmp/cni"]
    conf_dir = "$tmp/cni"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$bin/runc"
        Root = "$tmp/runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
      runtime_type = "io.containerd.runsc.v1"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
        TypeUrl = "io.containerd.runsc.v1.options"
        ConfigPath = "$tmp/runsc.toml"
    # A handler whose shim is not installed: CRI still lists it; a pod using it fails.
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.kata]
      runtime_type = "io.containerd.kata.v2"
EOF
cat >"$tmp/crictl.yaml" <<EOF
runtime-endpoint: unix://$sock
image-endpoint: unix://$sock
timeout: 60
EOF
crictl() { "$bin/crictl" --config "$tmp/crictl.yaml" "$@"; }

containerd_pid=
teardown() {
	set +e
	if [ -n "$containerd_pid" ]; then
		step "teardown: removing pods, stopping containerd (pid $containerd_pid)"
		crictl rmp -af >/dev/null 2>&1
		kill -TERM "$containerd_pid" 2>/dev/null
		for _ in $(seq 20); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.5; done
		kill -KILL "$containerd_pid" 2>/dev/null
		wait "$containerd_pid" 2>/dev/null
	fi
}
trap teardown EXIT

start=$SECONDS
step "starting containerd $("$bin/containerd" --version | cut -d' ' -f3) (log: $tmp/containerd.log)"
"$bin/containerd" --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 60); do
	[ -S "$sock" ] && crictl info >/dev/null 2>&1 && break
	kill -0 "$containerd_pid" 2>/dev/null || { tail -20 "$tmp/containerd.log" >&2; fail "containerd exited"; }
	sleep 0.5
done
crictl info >/dev/null || { tail -20 "$tmp/containerd.log" >&2; fail "CRI not ready after 30s"; }
handlers=$(crictl info -o json | grep -oE '"name": *"(runc|runsc|kata)"' | grep -oE '(runc|runsc|kata)' | sort -u | tr '\n' ' ')
step "CRI ready in $((SECONDS - start))s; runtime handlers: $handlers"
[ "$handlers" = "kata runc runsc " ] || fail "CRI lists handlers '$handlers', want kata runc runsc"

for image in pause busybox; do
	# ctr repeats containerd's cgroup v1 deprecation warning on stderr: shown only on failure.
	"$bin/ctr" --address "$sock" -n k8s.io images import "$bin/$image.oci.tar" >/dev/null 2>"$tmp/ctr.err" ||
		{ cat "$tmp/ctr.err" >&2; fail "ctr images import $bin/$image.oci.tar failed"; }
done
busybox=$(crictl images -o json | grep -oE '"localhost/busybox:[^"]+"' | tr -d '"' | head -1)
step "images: $(crictl images | awk 'NR > 1 {printf "%s:%s ", $1, $2}')"
[ -n "$busybox" ] || fail "busybox image not imported"

# run_pod HANDLER NAME: runs a pod sandbox and a busybox container printing /proc/version,
# prints the container's output.
run_pod() {
	local handler=$1 name=$2 t0 pod ctr state
	cat >"$tmp/$name-pod.json" <<EOF
{"metadata": {"name": "$name", "namespace": "smoke", "uid": "$name-uid", "attempt": 0},
 "log_directory": "$tmp/logs/$name",
 "linux": {"cgroup_parent": "/$cgroup/$name", "security_context": {"namespace_options": {"network": 2}}}}
EOF
	cat >"$tmp/$name-ctr.json" <<EOF
{"metadata": {"name": "version"}, "image": {"image": "$busybox"},
 "command": ["cat", "/proc/version"], "log_path": "version.log", "linux": {}}
EOF
	t0=$(date +%s.%N)
	pod=$(crictl runp --runtime "$handler" "$tmp/$name-pod.json") || return 1
	step "$handler: pod sandbox ${pod:0:12} ready in $(printf '%.2f' "$(echo "$(date +%s.%N) - $t0" | bc)")s;" \
		"its cgroups: $(find /sys/fs/cgroup -type d -path "*/$cgroup/$name" | wc -l) dirs named /$cgroup/$name"
	ctr=$(crictl create "$pod" "$tmp/$name-ctr.json" "$tmp/$name-pod.json") || return 1
	crictl start "$ctr" >/dev/null || return 1
	for _ in $(seq 40); do
		state=$(crictl inspect -o go-template --template '{{.status.state}}' "$ctr")
		[ "$state" = CONTAINER_EXITED ] && break
		sleep 0.25
	done
	[ "$state" = CONTAINER_EXITED ] || { echo "container still $state after 10s" >&2; return 1; }
	crictl logs "$ctr" 2>&1
	crictl stopp "$pod" >/dev/null && crictl rmp "$pod" >/dev/null
}

host=$(cat /proc/version)
out=$(run_pod runsc smoke-runsc) || { tail -20 "$tmp/containerd.log" >&2; fail "the runsc pod did not run"; }
step "runsc container: /proc/version = $out"
case $out in *gvisor*) ;; *) fail "runsc container printed '$out', want gVisor's kernel (host: $host)" ;; esac
out=$(run_pod runc smoke-runc) || { tail -20 "$tmp/containerd.log" >&2; fail "the runc pod did not run"; }
step "runc container: /proc/version = $out"
[ "$out" = "$host" ] || fail "runc container printed '$out', want the host's '$host'"
if msg=$(crictl runp --runtime kata "$tmp/smoke-runsc-pod.json" 2>&1); then
	fail "a pod with the handler whose shim is absent started"
fi
step "kata (shim absent): refused as expected: $(echo "$msg" | grep -oE 'no such file or directory|not found|not installed' | head -1)"
step "PASS in $((SECONDS - start))s"

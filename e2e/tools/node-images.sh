#!/usr/bin/env bash
# Builds the two images a real node needs offline (no registry is reachable from the tests) as
# OCI image layout archives, for `ctr -n k8s.io images import`:
#   pause.oci.tar    PAUSE_REF (the kubelet's and containerd's sandbox image), from Kubernetes'
#                    own pause.c, linked statically;
#   busybox.oci.tar  localhost/busybox:VERSION, Debian's statically linked busybox with its
#                    applets as symlinks in /bin.
# Usage: e2e/tools/node-images.sh PAUSE_C PAUSE_REF BUSYBOX_BINARY BUSYBOX_VERSION OUT_DIR
# Run by `e2e/tools/build.sh node-images`. Archives are reproducible: same inputs, same digests.
set -euo pipefail

[ $# = 5 ] || { echo "usage: $0 PAUSE_C PAUSE_REF BUSYBOX_BINARY BUSYBOX_VERSION OUT_DIR" >&2; exit 2; }
pause_c=$1 pause_ref=$2 busybox=$3 busybox_version=$4 out=$5
[ -f "$pause_c" ] || { echo "no pause.c at $pause_c (k8s.io/kubernetes build/pause/linux/pause.c)" >&2; exit 1; }
[ -x "$busybox" ] || { echo "no busybox binary at $busybox" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/oci.XXXXXX")
trap 'rm -rf "$work"' EXIT

sha() { sha256sum "$1" | cut -d' ' -f1; }
# blob FILE: stores FILE under blobs/sha256 of the current layout and prints its digest.
blob() {
	local d
	d=$(sha "$1")
	mkdir -p "$layout/blobs/sha256"
	cp "$1" "$layout/blobs/sha256/$d"
	echo "$d"
}
# deterministic_tar DIR OUT: a tar of DIR's content with fixed owners, order and times.
deterministic_tar() {
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
		--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$1" -cf "$2" .
}
# image NAME REF ROOTFS ENTRYPOINT_JSON CMD_JSON: writes $out/NAME.oci.tar, one uncompressed layer.
image() {
	local name=$1 ref=$2 rootfs=$3 entrypoint=$4 cmd=$5
	layout=$work/$name
	mkdir -p "$layout"
	deterministic_tar "$rootfs" "$work/$name.layer.tar"
	local layer layer_size config config_size manifest manifest_size
	layer=$(blob "$work/$name.layer.tar")
	layer_size=$(stat -c %s "$work/$name.layer.tar")
	printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":%s,"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$entrypoint" "$cmd" "$layer" >"$work/$name.config.json"
	config=$(blob "$work/$name.config.json")
	config_size=$(stat -c %s "$work/$name.config.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
		"$config" "$config_size" "$layer" "$layer_size" >"$work/$name.manifest.json"
	manifest=$(blob "$work/$name.manifest.json")
	manifest_size=$(stat -c %s "$work/$name.manifest.json")
	# io.containerd.image.name is the full reference ctr import tags the image with.
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
		"$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$layout/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
	deterministic_tar "$layout" "$out/$name.oci.tar.tmp"
	mv "$out/$name.oci.tar.tmp" "$out/$name.oci.tar"
	printf '==> %s: %s (manifest sha256:%s)\n' "$name.oci.tar" "$ref" "$manifest" >&2
}

mkdir -p "$work/pause-root"
gcc -static -Os -s -o "$work/pause-root/pause" "$pause_c"
image pause "$pause_ref" "$work/pause-root" '["/pause"]' null

mkdir -p "$work/busybox-root/bin" "$work/busybox-root/tmp"
cp "$busybox" "$work/busybox-root/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$work/busybox-root/bin/$applet"
done
version=${busybox_version#*:}  # drop the Debian epoch: a tag has no colon
version=${version//+/_}        # nor a plus
image busybox "localhost/busybox:$version" "$work/busybox-root" null '["sh"]'

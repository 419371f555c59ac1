#!/usr/bin/env bash
# Prints the directory holding the plain-YAML CustomResourceDefinitions of the cert-manager
# version this module pins (deploy/crds in the module zip, downloaded through the Go module proxy
# into the module cache if missing), e.g. for envtest's CRDInstallOptions.Paths or kubectl apply -f.
# Usage: e2e/tools/certmanager/crds.sh
set -euo pipefail

cd "$(dirname "$0")"
version=$(go list -m -f '{{.Version}}' github.com/cert-manager/cert-manager)
dir=$(go mod download -json "github.com/cert-manager/cert-manager@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
crds=$dir/deploy/crds
for kind in certificates issuers clusterissuers certificaterequests; do
	f=$crds/cert-manager.io_$kind.yaml
	[ -f "$f" ] || { echo "crds.sh: missing $f" >&2; exit 1; }
done
for kind in orders challenges; do
	f=$crds/acme.cert-manager.io_$kind.yaml
	[ -f "$f" ] || { echo "crds.sh: missing $f" >&2; exit 1; }
done
if grep -l '{{' "$crds"/*.yaml >&2; then
	echo "crds.sh: the files above are templated, not plain YAML" >&2
	exit 1
fi
echo "$crds"

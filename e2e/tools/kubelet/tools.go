//go:build tools

// Package tools pins the kubelet a real node runs (issue 15).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kubelet"
)

// Package apitest runs a real kube-apiserver and etcd for a Go test.
package apitest

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// Start runs etcd and kube-apiserver from <repo>/bin (the unit entry of e2e/tools/tools.txt,
// which `make unit` builds; missing tools fail the test rather than skip it) until the test
// ends, and returns its config and a client.
func Start(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	bin := tools.ForTest(t, "etcd", "kube-apiserver")
	env := &envtest.Environment{BinaryAssetsDirectory: bin, ControlPlaneStartTimeout: 2 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd from %s: %v", bin, err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, c
}

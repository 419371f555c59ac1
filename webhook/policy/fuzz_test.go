package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// FuzzDecodePod feeds arbitrary bytes to what the handlers do with request.object: decode the
// Pod, build the input and decide. Any outcome but a panic, a hang or a silent nil is fine.
func FuzzDecodePod(f *testing.F) {
	f.Add(realisticPod(f))
	f.Add([]byte(`{"spec":{"containers":[{"name":"train","image":"x","resources":{"limits":{"nvidia.com/gpu":"1"}}}]}}`))
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","resources":{"requests":{"example.com/fpga":1e30}}}]}}`))
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","resources":{"limits":{"example.com/x":"9223372036854775807Ei"}}}]}}`))
	f.Add([]byte(`{"metadata":{"labels":{"runtimeguard.io/workload":"untrusted"}},"spec":{"runtimeClassName":null}}`))
	f.Add([]byte(`{"spec":{"containers":[{"securityContext":{"privileged":true}}],"initContainers":null}}`))
	f.Add([]byte(`{"spec":{"resourceClaims":[{"name":"gpu","resourceClaimTemplateName":"single-gpu"},{"name":"c","resourceClaimName":"x"},null,{}]}}`))
	f.Add([]byte(`{"spec":{"resourceClaims":[{"name":"a","resourceClaimName":"x","resourceClaimTemplateName":"y"},{"resourceClaimTemplateName":""}]}}`))
	f.Add([]byte(`{"spec":{"resourceClaims":{"name":"gpu"}}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`"pod"`))
	if entries, err := os.ReadDir("testdata"); err == nil {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".json") {
				if b, err := os.ReadFile(filepath.Join("testdata", e.Name())); err == nil {
					f.Add(b)
				}
			}
		}
	}
	e := defaultEngine(f)
	v := testView(f)
	ns := &cluster.Namespace{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pod, err := DecodePod(raw)
		if err != nil {
			if pod != nil {
				t.Fatalf("DecodePod returned a pod with its error %v", err)
			}
			return
		}
		if pod == nil {
			t.Fatal("DecodePod returned neither pod nor error")
		}
		if _, err := podTerm(pod, &projected{}); err != nil {
			return // e.g. an extended resource that is not a quantity: the handler answers 400/500
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, _, err := e.Decide(ctx, Request{Operation: "CREATE", Namespace: ns, Pod: pod, Cluster: v.Snapshot(), Claims: v.Claims()})
		if err == nil && d == nil {
			t.Fatal("Decide returned neither decision nor error")
		}
		if err != nil && d != nil {
			t.Fatalf("Decide returned a decision with its error %v", err)
		}
	})
}

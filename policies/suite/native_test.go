package suite

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

// TestNativeAgreesWithTheWebhook runs the default policy's suite through the generated
// native policies: every difference must be one a documented limitation explains.
func TestNativeAgreesWithTheWebhook(t *testing.T) {
	var out bytes.Buffer
	r := RunWith(context.Background(), &out, []string{"../default.suite.yaml"}, Options{Native: true})
	if r.Failed+r.Broken > 0 || r.NativeDiffs > 0 {
		t.Fatalf("%+v\n%s", r, out.String())
	}
	// The suite has placement and DRA cases: the native policies must differ there, or the
	// comparison is not looking.
	if r.NativeExplained < 4 || !strings.Contains(out.String(), "because placement") || !strings.Contains(out.String(), "because resource claims") {
		t.Errorf("%d explained differences, want placement and DRA among them:\n%s", r.NativeExplained, out.String())
	}
}

// TestNativeDifferenceIsReported feeds compare a webhook outcome the native policies
// disagree with, for a Pod no limitation covers.
func TestNativeDifferenceIsReported(t *testing.T) {
	set, err := (&webhook.Options{}).LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	view := cluster.NewView(cluster.Options{})
	view.MarkSynced()
	nr, err := newNativeRun(set, view, "")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCase{name: "plain", pod: manifest.Object{Raw: []byte(`{"metadata":{"name":"a","namespace":"default"},"spec":{"containers":[{"name":"a","image":"a"}]}}`)}}
	diff, explained, err := nr.compare(context.Background(), view, c, webhook.Enforce, webhook.Outcome{Namespace: "default", Allowed: false, Message: "made up"})
	if err != nil {
		t.Fatal(err)
	}
	if diff == "" || explained != "" {
		t.Errorf("diff %q explained %q, want an unexplained difference", diff, explained)
	}
	var out bytes.Buffer
	var r Results
	nr.report(&out, "x.suite.yaml", c, diff, explained, &r)
	if r.NativeDiffs != 1 || !strings.Contains(out.String(), "NATIVE DIFFERS x.suite.yaml: plain") {
		t.Errorf("report %q, results %+v", out.String(), r)
	}
}

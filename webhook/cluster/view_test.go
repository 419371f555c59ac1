package cluster

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestNamespace(t *testing.T) {
	payments := Namespace{Name: "payments", Labels: map[string]string{"runtimeguard.io/tenancy": "financial"}}
	fresh := &Namespace{Name: "fresh", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}}
	getter := func(_ context.Context, name string) (*Namespace, error) {
		switch name {
		case "fresh":
			return fresh, nil
		case "flaky":
			return nil, errors.New("the server is currently unable to handle the request")
		}
		return nil, nil
	}
	tests := []struct {
		name      string
		getter    func(context.Context, string) (*Namespace, error)
		ns        string
		want      *Namespace
		wantFound bool
		wantErr   string
	}{
		{name: "a namespace the view holds is returned from it", getter: getter, ns: "payments", want: &payments, wantFound: true},
		{name: "a namespace the informer has not seen yet is read through the getter", getter: getter, ns: "fresh", want: fresh, wantFound: true},
		{name: "a namespace that exists nowhere is returned bare and not found", getter: getter, ns: "gone", want: &Namespace{Name: "gone"}},
		{name: "without a getter a namespace the view lacks is returned bare and not found", ns: "fresh", want: &Namespace{Name: "fresh"}},
		{name: "a getter error is returned", getter: getter, ns: "flaky", wantErr: "the server is currently unable to handle the request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewView(Options{NamespaceGetter: tt.getter})
			v.UpsertNamespace(payments)
			got, found, err := v.Namespace(t.Context(), tt.ns)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Namespace(%s) error = %v, want %q", tt.ns, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Namespace(%s) = %v", tt.ns, err)
			}
			if found != tt.wantFound || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Namespace(%s) = %+v, %v; want %+v, %v", tt.ns, got, found, tt.want, tt.wantFound)
			}
		})
	}
}

func TestNamespaceUpdatesDoNotMoveTheGeneration(t *testing.T) {
	v := NewView(Options{})
	gen := v.Snapshot().Generation
	v.UpsertNamespace(Namespace{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}})
	v.UpsertNamespace(Namespace{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "financial"}})
	if got, _, _ := v.Namespace(t.Context(), "tenant-a"); got.Labels["runtimeguard.io/tenancy"] != "financial" {
		t.Errorf("namespace labels = %v, want the latest update", got.Labels)
	}
	v.DeleteNamespace("tenant-a")
	if _, found, _ := v.Namespace(t.Context(), "tenant-a"); found {
		t.Error("a deleted namespace is still found")
	}
	if got := v.Snapshot().Generation; got != gen {
		t.Errorf("generation moved %d -> %d on namespace updates; decisions key their cache on namespace metadata instead", gen, got)
	}
}

func TestSynced(t *testing.T) {
	v := NewView(Options{})
	if v.Synced() {
		t.Fatal("a new view reports synced")
	}
	v.MarkSynced()
	if !v.Synced() {
		t.Fatal("MarkSynced did not mark the view synced")
	}
}

// Snapshot generations are what the policy engine keys its caches on. Two views are used in one
// process whenever a test, or a tool, builds more than one: their snapshots must never share a
// generation while holding different classes, or a shared engine serves one view's cached
// cluster to the other.
func TestGenerationsAreUniqueAcrossViews(t *testing.T) {
	a := NewView(Options{})
	a.UpsertRuntimeClass(gvisorClass())
	b := NewView(Options{})
	b.UpsertRuntimeClass(newClass("kata", "kata-qemu", nil))
	if ga, gb := a.Snapshot().Generation, b.Snapshot().Generation; ga == gb {
		t.Errorf("two views with different classes (%v, %v) publish the same generation %d",
			a.Snapshot().ClassNames(), b.Snapshot().ClassNames(), ga)
	}
}

func TestNamespaceLabelChangesCountsLabelChangesOnly(t *testing.T) {
	v := NewView(Options{})
	start := v.NamespaceLabelChanges()
	v.UpsertNamespace(Namespace{Name: "a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}})
	if v.NamespaceLabelChanges() != start+1 {
		t.Fatal("a new namespace is not counted")
	}
	v.UpsertNamespace(Namespace{Name: "a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}, Annotations: map[string]string{"x": "y"}})
	if v.NamespaceLabelChanges() != start+1 {
		t.Fatal("an annotation-only update is counted")
	}
	v.UpsertNamespace(Namespace{Name: "a", Labels: map[string]string{"runtimeguard.io/tenancy": "financial"}})
	v.DeleteNamespace("a")
	v.DeleteNamespace("a") // already gone: nothing changes
	if got := v.NamespaceLabelChanges(); got != start+3 {
		t.Fatalf("changes = %d, want %d (relabel and delete)", got-start, 3)
	}
}

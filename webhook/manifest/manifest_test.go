package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// summary is what a test can say about one decoded object without printing whole structs.
type summary struct {
	Type      string
	Namespace string
	Name      string
	Source    string
}

func summarize(t *testing.T, objs []Object) []summary {
	t.Helper()
	out := []summary{}
	for _, o := range objs {
		m, ok := o.Object.(metav1.Object)
		if !ok {
			t.Fatalf("%s: %T has no object metadata", o.Source, o.Object)
		}
		// Raw is what an AdmissionReview would carry: JSON of the same object.
		var raw struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(o.Raw, &raw); err != nil {
			t.Fatalf("%s: Raw is not JSON: %v\n%s", o.Source, err, o.Raw)
		}
		if raw.Metadata.Name != m.GetName() || raw.Metadata.Namespace != m.GetNamespace() {
			t.Errorf("%s: Raw names %s/%s, the object %s/%s", o.Source, raw.Metadata.Namespace, raw.Metadata.Name, m.GetNamespace(), m.GetName())
		}
		out = append(out, summary{Type: fmt.Sprintf("%T", o.Object), Namespace: m.GetNamespace(), Name: m.GetName(), Source: o.Source})
	}
	return out
}

func TestReadFile(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []summary
	}{
		{
			// Documents are numbered by their position between "---" separators, so #N is
			// found by counting separators; the leading comment block is document 1.
			name: "reads every document of a multi-document file, skipping comment-only ones but counting them",
			file: "testdata/multi.yaml",
			want: []summary{
				{"*v1.Namespace", "", "tenant-a", "testdata/multi.yaml#2"},
				{"*v1.Node", "", "sandbox-1", "testdata/multi.yaml#3"},
				{"*v1.RuntimeClass", "", "gvisor", "testdata/multi.yaml#5"},
				{"*v1.Pod", "tenant-a", "web", "testdata/multi.yaml#6"},
			},
		},
		{
			name: "unpacks a kind: List as kubectl get -o yaml prints it, naming each item",
			file: "testdata/list.yaml",
			want: []summary{
				{"*v1.Namespace", "", "payments", "testdata/list.yaml#1 item 1"},
				{"*v1.RuntimeClass", "", "kata", "testdata/list.yaml#1 item 2"},
			},
		},
		{
			name: "reads a JSON file",
			file: "testdata/pod.json",
			want: []summary{{"*v1.Pod", "payments", "ledger", "testdata/pod.json#1"}},
		},
		{
			name: "a file of comments only holds no objects",
			file: "testdata/comments-only.yaml",
			want: []summary{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := ReadFile(tt.file)
			if err != nil {
				t.Fatalf("ReadFile(%s) = %v", tt.file, err)
			}
			if got := summarize(t, objs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadFile(%s):\n got %+v\nwant %+v", tt.file, got, tt.want)
			}
		})
	}
}

func TestReadFileKeepsTheFieldsDecisionsNeed(t *testing.T) {
	objs, err := ReadFile("testdata/multi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ns := objs[0].Object.(*corev1.Namespace)
	if got := ns.Labels["runtimeguard.io/tenancy"]; got != "untrusted" {
		t.Errorf("namespace label runtimeguard.io/tenancy = %q, want untrusted", got)
	}
	node := objs[1].Object.(*corev1.Node)
	if len(node.Status.RuntimeHandlers) != 1 || node.Status.RuntimeHandlers[0].Name != "runsc" {
		t.Errorf("node status.runtimeHandlers = %+v, want [runsc]", node.Status.RuntimeHandlers)
	}
	rc := objs[2].Object.(*nodev1.RuntimeClass)
	if rc.Handler != "runsc" {
		t.Errorf("runtime class handler = %q, want runsc", rc.Handler)
	}
	list, err := ReadFile("testdata/list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kata := list[1].Object.(*nodev1.RuntimeClass)
	if kata.Scheduling == nil || kata.Scheduling.NodeSelector["katacontainers.io/kata-runtime"] != "true" {
		t.Errorf("List item RuntimeClass kata lost scheduling.nodeSelector: %+v", kata.Scheduling)
	}
}

func TestReadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		// The error starts with prefix and contains every one of contains.
		prefix   string
		contains []string
	}{
		{
			name:     "an unknown kind names the file and document and lists the supported kinds",
			file:     "testdata/unknown-kind.yaml",
			prefix:   "testdata/unknown-kind.yaml#2: ",
			contains: []string{`"Deployment"`, "(want Pod, Namespace, Node, RuntimeClass, ResourceClaimTemplate, ResourceClaim or List)"},
		},
		{
			name:     "a known but unsupported kind names the file, document and kind",
			file:     "testdata/unsupported-kind.yaml",
			prefix:   "testdata/unsupported-kind.yaml#1: unsupported kind ConfigMap (want Pod, Namespace, Node, RuntimeClass, ResourceClaimTemplate, ResourceClaim or List)",
			contains: nil,
		},
		{
			name:     "an unsupported List item names the file, document and item",
			file:     "testdata/list-bad-item.yaml",
			prefix:   "testdata/list-bad-item.yaml#1 item 2: unsupported kind ConfigMap (want Pod, Namespace, Node, RuntimeClass, ResourceClaimTemplate, ResourceClaim or List)",
			contains: nil,
		},
		{
			name:     "a document without kind names the file and document",
			file:     "testdata/no-kind.yaml",
			prefix:   "testdata/no-kind.yaml#1: ",
			contains: []string{"Kind", "(want Pod, Namespace, Node, RuntimeClass, ResourceClaimTemplate, ResourceClaim or List)"},
		},
		{
			name:     "broken YAML names the file and the document",
			file:     "testdata/broken.yaml",
			prefix:   "testdata/broken.yaml#2: not valid YAML or JSON: ",
			contains: []string{"line"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := ReadFile(tt.file)
			if err == nil {
				t.Fatalf("ReadFile(%s) = %d objects, want an error", tt.file, len(objs))
			}
			if objs != nil {
				t.Errorf("ReadFile(%s) returned %d objects with its error", tt.file, len(objs))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tt.prefix) {
				t.Errorf("error %q\ndoes not start with %q", msg, tt.prefix)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("error %q\ndoes not mention %q", msg, c)
				}
			}
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	_, err := ReadFile("testdata/does-not-exist.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile of a missing file = %v, want fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "testdata/does-not-exist.yaml") {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestReadNamesTheSource(t *testing.T) {
	objs, err := Read(strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n"), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	want := []summary{{"*v1.Namespace", "", "a", "stdin#1"}, {"*v1.Namespace", "", "b", "stdin#2"}}
	if got := summarize(t, objs); !reflect.DeepEqual(got, want) {
		t.Errorf("Read:\n got %+v\nwant %+v", got, want)
	}
}

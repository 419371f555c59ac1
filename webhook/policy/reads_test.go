package policy

import (
	"strings"
	"testing"
)

// Pods that differ only in labels the policy does not read share one decision: a StatefulSet's
// Pods (pod-name, pod-index) and a Job's (controller-uid) are each a cache hit after the first.
func TestPodsDifferingInUnreadLabelsShareADecision(t *testing.T) {
	e := defaultEngine(t)
	v := testView(t)
	pod := func(labels string) *Pod {
		return mustPod(t, `{"metadata":{"labels":{"app":"web",`+labels+`}},"spec":{"containers":[{"name":"web","image":"web:1"}]}}`)
	}
	first, cached, err := e.Decide(t.Context(), request(t, v, "tenant-a", pod(`"statefulset.kubernetes.io/pod-name":"web-0","apps.kubernetes.io/pod-index":"0"`)))
	if err != nil || cached || first.Class != "gvisor" {
		t.Fatalf("web-0: class %q cached=%v err=%v, want an evaluated gvisor", first.Class, cached, err)
	}
	indexedJobPod := pod(`"batch.kubernetes.io/controller-uid":"3f1c","job-name":"nightly"`)
	indexedJobPod.Metadata.GenerateName = "nightly-3-" // the default policy does not read it
	for i, p := range []*Pod{
		pod(`"statefulset.kubernetes.io/pod-name":"web-1","apps.kubernetes.io/pod-index":"1"`),
		indexedJobPod,
	} {
		d, cached, err := e.Decide(t.Context(), request(t, v, "tenant-a", p))
		if err != nil || !cached || d != first {
			t.Errorf("pod %d: cached=%v same decision=%v err=%v, want the first decision from the cache", i+1, cached, d == first, err)
		}
	}
	// A label the policy reads is still part of the key.
	d, cached, err := e.Decide(t.Context(), request(t, v, "tenant-a", pod(`"runtimeguard.io/workload":"financial"`)))
	if err != nil || cached || d.Class != "kata" {
		t.Errorf("financial pod: class %q cached=%v err=%v, want an evaluated kata", d.Class, cached, err)
	}
}

// The policy is given only the declared labels and annotations: a custom rule cannot see an
// undeclared one, and sees it once declared.
func TestThePolicyIsGivenOnlyWhatItDeclares(t *testing.T) {
	const rule = `package runtimeguard

warn contains sprintf("team %s", [team]) if {
	some key, team in input.pod.labels
	key == "example.com/team"
}
`
	pod := mustPod(t, `{"metadata":{"labels":{"example.com/team":"payments"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`)
	for _, tc := range []struct {
		name     string
		data     string
		wantWarn bool
	}{
		{"undeclared", "", false},
		{"declared", "config:\n  reads:\n    teams:\n      pod_labels: [example.com/team]\n", true},
		{"declared as a prefix", "config:\n  reads:\n    teams:\n      pod_labels: [example.com/]\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"teams.rego": rule}
			if tc.data != "" {
				files["teams.yaml"] = tc.data
			}
			e := mustEngine(t, policyFiles(t, true, files), 0)
			d, _, err := e.Decide(t.Context(), request(t, testView(t), "default", pod))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Contains(strings.Join(d.Warn, "\n"), "team payments")
			if got != tc.wantWarn {
				t.Errorf("warnings %q: team warning=%v, want %v", d.Warn, got, tc.wantWarn)
			}
		})
	}
}

func TestReadsDeclarationErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{
			name:  "a key read by name that no entry declares is refused with file and line",
			files: map[string]string{"owner.rego": "package runtimeguard\n\nwarn contains \"owned\" if {\n\tinput.namespace.annotations[\"example.com/owner\"]\n}\n"},
			want:  `owner.rego:4: reads input.namespace.annotations["example.com/owner"], but data.config.reads does not declare "example.com/owner": add it to a config.reads entry's namespace_annotations`,
		},
		{
			name:  "an unknown list is refused naming it",
			files: map[string]string{"x.yaml": "config:\n  reads:\n    mine:\n      pod_label: [a]\n"},
			want:  "data.config.reads.mine.pod_label is not known: an entry holds pod_labels, namespace_labels, pod_annotations, namespace_annotations, pod_fields",
		},
		{
			name:  "a key that is not a string is refused naming its place",
			files: map[string]string{"x.yaml": "config:\n  reads:\n    mine:\n      pod_labels: [1]\n"},
			want:  "data.config.reads.mine.pod_labels[0] is a number, want a label or annotation key",
		},
		{
			name:  "generateName read without pod_fields is refused with file and line",
			files: map[string]string{"gen.rego": "package runtimeguard\n\nwarn contains input.pod.generateName if {\n\tinput.pod.generateName != \"\"\n}\n"},
			want:  "gen.rego:3: reads input.pod.generateName, but data.config.reads does not declare it: add generateName to a config.reads entry's pod_fields",
		},
		{
			name:  "pod_fields holds only fields given on request",
			files: map[string]string{"x.yaml": "config:\n  reads:\n    mine:\n      pod_fields: [name]\n"},
			want:  "data.config.reads.mine.pod_fields[0] is not a field runtimeguard gives only on request: the fields are generateName",
		},
		{
			name:  "an entry that is a list is refused",
			files: map[string]string{"x.yaml": "config:\n  reads:\n    mine: [a]\n"},
			want:  "data.config.reads.mine is an array, want an object",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := LoadFS(policyFiles(t, true, tc.files))
			if err == nil {
				_, err = NewEngine(t.Context(), set, 0)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

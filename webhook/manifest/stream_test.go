package manifest

import (
	"strings"
	"testing"
)

// What ReadManifests makes of each document: a Pod or workload to decide, an object to skip,
// or an error naming the document.
func TestReadManifestsClassifies(t *testing.T) {
	const stream = `apiVersion: v1
kind: Pod
metadata: {generateName: web-}
spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: jobs}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: job, image: busybox}]}}}
---
# A custom resource that happens to be called Job is someone else's kind, not an old batch one.
apiVersion: example.com/v1
kind: Job
metadata: {name: custom}
spec: {anything: [goes]}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: jobs}
unknownTopLevel: is not runtimeguard's to judge
---
apiVersion: batch/v2alpha1
kind: CronJob
metadata: {name: alpha}
---
apiVersion: v1
kind: Deployment
metadata: {name: grouped-wrong}
---
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: volcano}
`
	f := &Files{In: strings.NewReader(stream)}
	docs := f.ReadManifests([]string{Stdin}, false)
	type got struct {
		source, kind, namespace, name string
		decided, workload             bool
		err                           string
	}
	want := []got{
		{"stdin#1", "Pod", "", "web-", true, false, ""},
		{"stdin#2", "Job", "jobs", "once", true, true, ""},
		{"stdin#3", "Job", "", "custom", false, false, ""},
		{"stdin#4", "Secret", "jobs", "s", false, false, ""},
		{"stdin#5", "", "", "", false, false, `stdin#5: cronjob "alpha": apiVersion "batch/v2alpha1" is not one runtimeguard (or a current API server) knows for kind CronJob; want batch/v1`},
		{"stdin#6", "", "", "", false, false, `stdin#6: deployment "grouped-wrong": apiVersion "v1" is not one runtimeguard (or a current API server) knows for kind Deployment; want apps/v1`},
		{"stdin#7", "Job", "", "volcano", false, false, ""},
	}
	if len(docs) != len(want) {
		t.Fatalf("%d documents, want %d: %+v", len(docs), len(want), docs)
	}
	for i, d := range docs {
		g := got{source: d.Source, kind: d.GVK.Kind, namespace: d.Namespace, name: d.Name, decided: d.Object != nil, workload: d.Workload}
		if d.Err != nil {
			g.err = d.Err.Error()
		}
		if g != want[i] {
			t.Errorf("document %d:\n got %+v\nwant %+v", i+1, g, want[i])
		}
		if d.Skipped() == (d.Object != nil || d.Err != nil) {
			t.Errorf("document %d: Skipped() = %v", i+1, d.Skipped())
		}
	}
}

func TestReadManifestsStdinOnce(t *testing.T) {
	f := &Files{In: strings.NewReader("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")}
	docs := f.ReadManifests([]string{Stdin, Stdin}, false)
	if len(docs) != 2 || docs[0].Err != nil || docs[1].Err == nil || !strings.Contains(docs[1].Err.Error(), "given twice") {
		t.Fatalf("reading - twice: %+v, want the namespace then an error", docs)
	}
}

// Only a List's items are read as items: another kind's member of that name is its own business.
func TestReadManifestsItems(t *testing.T) {
	f := &Files{In: strings.NewReader("apiVersion: v1\nkind: List\nitems: 3\n---\napiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\nitems: {a: 1}\n")}
	docs := f.ReadManifests([]string{Stdin}, false)
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2: %+v", len(docs), docs)
	}
	if docs[0].Err == nil || !strings.HasPrefix(docs[0].Err.Error(), "stdin#1: items of a List: ") {
		t.Errorf("a List whose items are a number: %v, want an error naming the document", docs[0].Err)
	}
	if !docs[1].Skipped() || docs[1].Name != "t" {
		t.Errorf("a custom resource with an items member: %+v, want it skipped", docs[1])
	}
}

// A YAML List's duplicate keys are found even when its first item is skipped, and reported once.
func TestReadManifestsListStrictYAML(t *testing.T) {
	const list = `apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
  - apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers: [{name: a, image: x}]
      containers: [{name: b, image: y}]
  - {apiVersion: v1, kind: Pod, metadata: {name: q}, spec: {containers: [{name: a, image: x}]}}
`
	docs := (&Files{In: strings.NewReader(list)}).ReadManifests([]string{Stdin}, false)
	if len(docs) != 3 {
		t.Fatalf("%d documents, want 3: %+v", len(docs), docs)
	}
	if !docs[0].Skipped() || docs[2].Err != nil || docs[2].Object == nil {
		t.Errorf("items 1 and 3: %+v, %+v; want skipped and decided", docs[0], docs[2])
	}
	if err := docs[1].Err; err == nil || !strings.HasPrefix(err.Error(), "stdin#1 item 2: pod \"p\": ") || !strings.Contains(err.Error(), `key "containers" already set`) {
		t.Errorf("item 2: %v, want the duplicate key named", err)
	}
}

package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// setup describes the Pipeline a test talks to. The zero value is the default policy, enforce
// mode, runtimeguard running in namespace "runtimeguard", over testdata/cluster.yaml.
type setup struct {
	// clusterFile defaults to testdata/cluster.yaml.
	clusterFile string
	view        cluster.Options
	enforcement Enforcement
	// workloadReview is Config.WorkloadReview ("" = enforce).
	workloadReview WorkloadReview
	// unsynced leaves the view not synced, as before the informers caught up.
	unsynced bool
	// policy replaces the default policy with these files; extra adds files to it.
	policy map[string]string
	extra  map[string]string
}

// policyFS returns the default policy's files plus extra, or exactly files when given.
func policyFS(tb testing.TB, files, extra map[string]string) fs.FS {
	tb.Helper()
	m := fstest.MapFS{}
	if files == nil {
		err := fs.WalkDir(policies.FS, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(policies.FS, path)
			m[path] = &fstest.MapFile{Data: b}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	for name, src := range files {
		m[name] = &fstest.MapFile{Data: []byte(src)}
	}
	for name, src := range extra {
		m[name] = &fstest.MapFile{Data: []byte(src)}
	}
	return m
}

// newPipeline builds a fresh engine and view for s: engines are never shared between views.
func newPipeline(tb testing.TB, s setup) *Pipeline {
	tb.Helper()
	ctx := context.Background()
	file := s.clusterFile
	if file == "" {
		file = "testdata/cluster.yaml"
	}
	view, err := cluster.LoadFiles(s.view, file)
	if err != nil {
		tb.Fatal(err)
	}
	if s.unsynced {
		// LoadFiles marks the view synced: load the same objects into one that is not, as
		// before the informers caught up.
		objs, err := manifest.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		view = cluster.NewView(s.view)
		if err := view.Load(objs); err != nil {
			tb.Fatal(err)
		}
	}
	set, err := policy.LoadFS(policyFS(tb, s.policy, s.extra))
	if err != nil {
		tb.Fatal(err)
	}
	engine, err := policy.NewEngine(ctx, set, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return NewPipeline(Config{Engine: engine, View: view, Enforcement: s.enforcement, WorkloadReview: s.workloadReview, Namespace: "runtimeguard"})
}

// handlers wraps the Pipeline the way serve registers it. RecoverPanic is off so that a panic
// fails the test instead of turning into a 500 answer.
func handlers(a *Pipeline) (mutate, validate http.Handler) {
	return a.MutateHandler(), a.ValidateHandler()
}

func readReview(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "reviews", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// post sends body to srv as the API server does and decodes the AdmissionReview it answers.
func post(tb testing.TB, url string, body []byte) (int, *admissionv1.AdmissionReview, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &ar); err != nil {
		tb.Fatalf("the answer is not an AdmissionReview: %v\n%s", err, raw)
	}
	return resp.StatusCode, &ar, raw
}

// serve starts both handlers of a on an httptest server, closed with the test.
func serve(tb testing.TB, a *Pipeline) (mutateURL, validateURL string) {
	tb.Helper()
	mutate, validate := handlers(a)
	mux := http.NewServeMux()
	mux.Handle(MutatePath, mutate)
	mux.Handle(ValidatePath, validate)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv.URL + MutatePath, srv.URL + ValidatePath
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

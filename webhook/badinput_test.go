package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// This file sends bad input through the stack `runtimeguard serve` runs: controller-runtime's
// webhook server with TLSOptions and dev certificates, each path registered with
// admissionHandler (bodyDeadline around the reviewHandler, which recovers panics), spoken to
// over TLS with HTTP/2 like the API server does. Each case checks the answer, that nothing
// panicked, and that the log (captured at every verbosity) never holds the object; then the
// worst inputs are repeated to check that goroutines and the heap do not grow.

// Markers of the object: neither may ever appear in a log line, and secretValue not in an answer.
const (
	secretKey   = "example.com/db-password"
	secretValue = "s3cr3t-Sentinel-7d41c2"
	imageMarker = "registry.example.com/storefront/checkout:2.14.3"
)

// captured holds every log line of the process's controller-runtime logger.
var captured struct {
	once  sync.Once
	mu    sync.Mutex
	lines bytes.Buffer
}

func captureLogs() {
	captured.once.Do(func() {
		ctrl.SetLogger(funcr.New(func(prefix, args string) {
			captured.mu.Lock()
			defer captured.mu.Unlock()
			fmt.Fprintln(&captured.lines, prefix, args)
		}, funcr.Options{Verbosity: 10}))
	})
}

func takeLogs() string {
	captured.mu.Lock()
	defer captured.mu.Unlock()
	s := captured.lines.String()
	captured.lines.Reset()
	return s
}

// badInputServer is controller-runtime's webhook server serving an Pipeline that a case may
// replace: the handler chain is the one serve registers.
type badInputServer struct {
	admitter atomic.Pointer[Pipeline]
	base     string
	// client speaks HTTP/2, as the API server does; http1 speaks HTTP/1.1.
	client, http1 *http.Client
}

func startBadInputServer(t *testing.T) *badInputServer {
	t.Helper()
	captureLogs()
	dir := t.TempDir()
	dev, err := certs.WriteDevCerts(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := &badInputServer{base: fmt.Sprintf("https://127.0.0.1:%d", port)}
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: dir, TLSOpts: []func(*tls.Config){TLSOptions},
	})
	// The handlers serve registers, on whichever pipeline the case runs.
	srv.Register(MutatePath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.admitter.Load().MutateHandler().ServeHTTP(w, r)
	}))
	srv.Register(ValidatePath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.admitter.Load().ValidateHandler().ServeHTTP(w, r)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	b.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: dev.CertPool()},
		ForceAttemptHTTP2: true,
	}}
	b.http1 = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: dev.CertPool(), NextProtos: []string{"http/1.1"}},
	}}
	t.Cleanup(b.client.CloseIdleConnections)
	t.Cleanup(b.http1.CloseIdleConnections)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: dev.CertPool()})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b
}

// answer is what came back for one POST.
type badAnswer struct {
	status int
	review admissionv1.AdmissionReview
	raw    []byte
}

func (b *badInputServer) post(t *testing.T, path, contentType string, body []byte) badAnswer {
	return b.postWith(t, b.client, 2, path, contentType, body)
}

func (b *badInputServer) postWith(t *testing.T, c *http.Client, proto int, path, contentType string, body []byte) badAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != proto {
		t.Fatalf("POST %s went over %s, want HTTP/%d", path, resp.Proto, proto)
	}
	a := badAnswer{status: resp.StatusCode}
	if a.raw, err = io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading the answer to POST %s: %v", path, err)
	}
	if err := json.Unmarshal(a.raw, &a.review); err != nil {
		t.Fatalf("POST %s: HTTP %d and not an AdmissionReview: %v\n%.2000s", path, a.status, err, a.raw)
	}
	return a
}

// outcome is what one endpoint must answer.
type outcome struct {
	status int // HTTP status; 0 means 200
	// apiVersion of the answered AdmissionReview.
	apiVersion string
	allowed    bool
	code       int32
	// has are fragments of response.result.message, in order.
	has []string
	// patchClass is the class a JSON patch must set, "" for no patch.
	patchClass string
	// warns are fragments that some warning must contain.
	warns []string
}

const v1Review = "admission.k8s.io/v1"

func okPatched(class string, has ...string) *outcome {
	return &outcome{apiVersion: v1Review, allowed: true, code: 200, patchClass: class, has: has}
}
func okAllowed(has ...string) *outcome {
	return &outcome{apiVersion: v1Review, allowed: true, code: 200, has: has}
}
func okDenied(has ...string) *outcome {
	return &outcome{apiVersion: v1Review, code: http.StatusForbidden, has: has}
}
func okErrored(code int32, has ...string) *outcome {
	return &outcome{apiVersion: v1Review, code: code, has: has}
}

func (o *outcome) inVersion(v string) *outcome  { o.apiVersion = v; return o }
func (o *outcome) warning(w ...string) *outcome { o.warns = w; return o }

const notSetYet = `spec.runtimeClassName is not set; set it to "gvisor"`

func check(t *testing.T, hook string, got badAnswer, want *outcome) {
	t.Helper()
	status := want.status
	if status == 0 {
		status = http.StatusOK
	}
	if got.status != status {
		t.Errorf("%s: HTTP %d, want %d", hook, got.status, status)
	}
	if got.review.APIVersion != want.apiVersion {
		t.Errorf("%s: answered apiVersion %q, want %q", hook, got.review.APIVersion, want.apiVersion)
	}
	if got.review.Kind != "AdmissionReview" {
		t.Errorf("%s: answered kind %q, want AdmissionReview", hook, got.review.Kind)
	}
	r := got.review.Response
	if r == nil || r.Result == nil {
		t.Fatalf("%s: no response.result in %.2000s", hook, got.raw)
	}
	if strings.Contains(r.Result.Message, "[recovered]") || strings.Contains(r.Result.Message, "panic") {
		t.Fatalf("%s: the handler panicked: %s", hook, r.Result.Message)
	}
	if r.Allowed != want.allowed || r.Result.Code != want.code {
		t.Errorf("%s: allowed=%v code=%d (%q), want allowed=%v code=%d", hook, r.Allowed, r.Result.Code, r.Result.Message, want.allowed, want.code)
	}
	rest := r.Result.Message
	for _, frag := range want.has {
		i := strings.Index(rest, frag)
		if i < 0 {
			t.Errorf("%s: message %q lacks (in order) %q", hook, r.Result.Message, frag)
			break
		}
		rest = rest[i+len(frag):]
	}
	wantPatch := ""
	if want.patchClass != "" {
		wantPatch = fmt.Sprintf(`[{"op":"add","path":"/spec/runtimeClassName","value":%q}]`, want.patchClass)
	}
	if string(r.Patch) != wantPatch {
		t.Errorf("%s: patch %s, want %s", hook, r.Patch, wantPatch)
	}
	for _, w := range want.warns {
		found := false
		for _, have := range r.Warnings {
			found = found || strings.Contains(have, w)
		}
		if !found {
			t.Errorf("%s: warnings %q lack %q", hook, r.Warnings, w)
		}
	}
	if bytes.Contains(got.raw, []byte(secretValue)) {
		t.Errorf("%s: the answer echoes a value of the object: %.2000s", hook, got.raw)
	}
}

// checkLogs fails when a log line holds the object.
func checkLogs(t *testing.T, logs string) {
	t.Helper()
	for _, marker := range []string{secretValue, imageMarker} {
		if i := strings.Index(logs, marker); i >= 0 {
			t.Errorf("a log line holds the object (%q): %.300s", marker, logs[max(0, i-150):])
		}
	}
}

// baseReview is a real Pod CREATE in the untrusted namespace tenant-a, with a secret-looking
// annotation; edit changes its request and object.
func baseReview(t testing.TB, edit func(req, pod map[string]any)) []byte {
	t.Helper()
	var review map[string]any
	if err := json.Unmarshal(readReview(t, "untrusted-no-class.json"), &review); err != nil {
		t.Fatal(err)
	}
	req := review["request"].(map[string]any)
	pod := req["object"].(map[string]any)
	meta := pod["metadata"].(map[string]any)
	meta["annotations"].(map[string]any)[secretKey] = secretValue
	if edit != nil {
		edit(req, pod)
	}
	b, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawPlaceholder marks where withRaw puts JSON text that json.Marshal cannot produce.
const rawPlaceholder = "\"__raw__\""

func withRaw(t testing.TB, body []byte, raw string) []byte {
	t.Helper()
	if bytes.Count(body, []byte(rawPlaceholder)) != 1 {
		t.Fatalf("the body holds %d placeholders, want 1", bytes.Count(body, []byte(rawPlaceholder)))
	}
	return bytes.Replace(body, []byte(rawPlaceholder), []byte(raw), 1)
}

func nested(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

func containers(n, variant int) []any {
	cs := make([]any, n)
	for i := range cs {
		cs[i] = map[string]any{
			"name":      fmt.Sprintf("c%d-%d", variant, i),
			"image":     fmt.Sprintf("registry.example.com/app-%d:%d", i, variant),
			"resources": map[string]any{"limits": map[string]any{"cpu": "100m", "memory": "64Mi"}},
			"env":       []any{map[string]any{"name": "X", "value": strings.Repeat("v", 64)}},
		}
	}
	return cs
}

// annotations returns about size bytes of annotations in 4 KiB values, distinct per variant.
func annotations(size, variant int) map[string]any {
	m := map[string]any{secretKey: secretValue}
	for i := 0; i < size/4096; i++ {
		m[fmt.Sprintf("example.com/blob-%d", i)] = fmt.Sprintf("%08d", variant) + strings.Repeat("x", 4096-8)
	}
	return m
}

// Views for the cluster-state cases.

// readyNode returns a Ready Node with the labels the kubelet sets plus labels.
func readyNode(name string, labels map[string]string, handlers ...string) *corev1.Node {
	all := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
	maps.Copy(all, labels)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: all}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	for _, h := range handlers {
		n.Status.RuntimeHandlers = append(n.Status.RuntimeHandlers, corev1.NodeRuntimeHandler{Name: h})
	}
	return n
}

var gvisorClass = &nodev1.RuntimeClass{
	ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc",
	Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{"sandbox.runtimeguard.io/gvisor": "true"}},
}

// pipelineOver returns an Pipeline with the default policy over a view built by fill.
func pipelineOver(t testing.TB, opts cluster.Options, fill func(v *cluster.View)) *Pipeline {
	t.Helper()
	v := cluster.NewView(opts)
	for _, ns := range []cluster.Namespace{
		{Name: "default"},
		{Name: "tenant-a", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}},
	} {
		v.UpsertNamespace(ns)
	}
	fill(v)
	v.MarkSynced()
	set, err := (&Options{}).LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.NewEngine(context.Background(), set, 0)
	if err != nil {
		t.Fatal(err)
	}
	return NewPipeline(Config{Engine: e, View: v, Namespace: "runtimeguard", Metrics: NewMetrics(prometheus.NewRegistry())})
}

// pipelineWithPolicy returns an Pipeline over testdata/cluster.yaml deciding with one policy
// file and the given evaluation deadline.
func pipelineWithPolicy(t testing.TB, src string, timeout time.Duration, mode Enforcement) *Pipeline {
	t.Helper()
	view, err := cluster.LoadFiles(cluster.Options{}, "testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := policy.LoadFS(policyFS(t, map[string]string{"policy.rego": src}, nil))
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.NewEngine(context.Background(), set, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return NewPipeline(Config{Engine: e, View: view, Enforcement: mode, Namespace: "runtimeguard", Metrics: NewMetrics(prometheus.NewRegistry())})
}

// loopingPolicy needs minutes to decide: it is cut at the evaluation deadline.
const loopingPolicy = `package runtimeguard

decision := {"class": "", "reasons": [sprintf("%d", [n])]}

n := count([1 |
	some x in numbers.range(1, 20000 * count(input.pod.containers))
	some y in numbers.range(1, 20000)
])
`

const denyIsAStringPolicy = `package runtimeguard

decision := {"class": "", "deny": "no", "warn": [], "reasons": []}
`

// badInputCase is one row of the table: a name that is a sentence, the Pipeline (nil: the
// default policy over testdata/cluster.yaml, enforce mode), the body, and what each endpoint
// answers (nil: not sent there).
type badInputCase struct {
	name        string
	admitter    func(t *testing.T) *Pipeline
	body        func(t testing.TB, variant int) []byte
	contentType string
	// http1 sends over HTTP/1.1 instead of HTTP/2.
	http1  bool
	mutate *outcome
	// between runs after the mutate call; validateBody, when set, replaces the body for the
	// validate call and receives the mutate answer.
	between      func(t *testing.T, a *Pipeline)
	validateBody func(t *testing.T, body []byte, mutated badAnswer) []byte
	validate     *outcome
	// worst marks the inputs repeated 200 times by TestBadInputDoesNotLeak.
	worst bool
}

func fixed(b []byte) func(testing.TB, int) []byte { return func(testing.TB, int) []byte { return b } }

func reviewOf(edit func(req, pod map[string]any)) func(testing.TB, int) []byte {
	return func(t testing.TB, _ int) []byte { return baseReview(t, edit) }
}

const invalidPlacement = "pod placement is invalid: spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."

// withAffinity is the base Pod with required node affinity made of terms.
func withAffinity(terms ...any) func(testing.TB, int) []byte {
	return reviewOf(func(_, pod map[string]any) {
		pod["spec"].(map[string]any)["affinity"] = map[string]any{"nodeAffinity": map[string]any{
			"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{"nodeSelectorTerms": terms},
		}}
	})
}

// inDefaultNaming is the base Pod moved to namespace default, naming class.
func inDefaultNaming(class string) func(testing.TB, int) []byte {
	return reviewOf(func(req, pod map[string]any) {
		req["namespace"] = "default"
		pod["metadata"].(map[string]any)["namespace"] = "default"
		pod["spec"].(map[string]any)["runtimeClassName"] = class
	})
}

func badInputCases() []badInputCase {
	const malformed = "cannot decode the Pod in request.object: "
	const decodeErr = "cannot decode the AdmissionReview: "
	getterCalls := &atomic.Int64{}
	return []badInputCase{
		// The HTTP body.
		{
			name:     "an empty body over HTTP/1.1 is answered 400 request body is empty",
			body:     fixed(nil),
			http1:    true,
			mutate:   okErrored(400, "request body is empty"),
			validate: okErrored(400, "request body is empty"),
		},
		{
			name:     "an empty body over HTTP/2, where it is not http.NoBody, is answered 400 request body is empty too",
			body:     fixed(nil),
			mutate:   okErrored(400, "request body is empty"),
			validate: okErrored(400, "request body is empty"),
		},
		{
			name:     "a body that is not JSON is answered 400 naming the byte offset (from 0)",
			body:     fixed([]byte("{runtimeClassName: [gvisor")),
			mutate:   okErrored(400, decodeErr, "invalid JSON at byte 1"),
			validate: okErrored(400, decodeErr, "invalid JSON at byte 1"),
		},
		{
			name:     "a YAML body is answered 400 invalid JSON, since only JSON is decoded",
			body:     fixed([]byte("runtimeClassName: gvisor\n")),
			mutate:   okErrored(400, decodeErr, "invalid JSON at byte 0"),
			validate: okErrored(400, decodeErr, "invalid JSON at byte 0"),
		},
		{
			name: "truncated JSON is answered 400 the JSON is truncated",
			body: func(t testing.TB, _ int) []byte {
				b := baseReview(t, nil)
				return b[:len(b)/2]
			},
			mutate:   okErrored(400, decodeErr, "the JSON is truncated"),
			validate: okErrored(400, decodeErr, "the JSON is truncated"),
		},
		{
			name: "a body over the 7 MiB limit (controller-runtime's) is answered 413 without being decoded",
			body: func(t testing.TB, v int) []byte {
				return baseReview(t, func(_, pod map[string]any) {
					pod["metadata"].(map[string]any)["annotations"] = annotations(7<<20+64<<10, v)
				})
			},
			mutate:   okErrored(413, "request entity is too large; limit is 7340032 bytes"),
			validate: okErrored(413, "request entity is too large; limit is 7340032 bytes"),
			worst:    true,
		},
		{
			name:        "a body sent as text/plain is answered 400 naming the content type expected",
			body:        reviewOf(nil),
			contentType: "text/plain",
			mutate:      okErrored(400, "contentType=text/plain, expected application/json"),
			validate:    okErrored(400, "contentType=text/plain, expected application/json"),
		},
		{
			name:        "a Content-Type with a charset parameter is refused too, since the API server sends exactly application/json",
			body:        reviewOf(nil),
			contentType: "application/json; charset=utf-8",
			mutate:      okErrored(400, "contentType=application/json; charset=utf-8, expected application/json"),
			validate:    okErrored(400, "contentType=application/json; charset=utf-8, expected application/json"),
		},
		// The AdmissionReview.
		{
			name: "an AdmissionReview of an unknown apiVersion is answered 400 naming the version expected",
			body: func(t testing.TB, _ int) []byte {
				return bytes.Replace(baseReview(t, nil), []byte(`"apiVersion":"admission.k8s.io/v1"`), []byte(`"apiVersion":"admission.k8s.io/v2"`), 1)
			},
			mutate:   okErrored(400, "the body is admission.k8s.io/v2 AdmissionReview, want admission.k8s.io/v1 AdmissionReview"),
			validate: okErrored(400, "the body is admission.k8s.io/v2 AdmissionReview, want admission.k8s.io/v1 AdmissionReview"),
		},
		{
			name: "a body of kind Pod instead of AdmissionReview is answered 400 naming what it is",
			body: func(t testing.TB, _ int) []byte {
				return bytes.Replace(baseReview(t, nil), []byte(`"kind":"AdmissionReview"`), []byte(`"kind":"Pod"`), 1)
			},
			mutate:   okErrored(400, "the body is admission.k8s.io/v1 Pod, want admission.k8s.io/v1 AdmissionReview"),
			validate: okErrored(400, "the body is admission.k8s.io/v1 Pod, want admission.k8s.io/v1 AdmissionReview"),
		},
		{
			name: "a v1beta1 AdmissionReview is decided and answered as v1beta1",
			body: func(t testing.TB, _ int) []byte {
				return bytes.Replace(baseReview(t, nil), []byte(`"apiVersion":"admission.k8s.io/v1"`), []byte(`"apiVersion":"admission.k8s.io/v1beta1"`), 1)
			},
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`).inVersion("admission.k8s.io/v1beta1"),
			validate: okDenied(notSetYet).inVersion("admission.k8s.io/v1beta1"),
		},
		{
			name: "a review that names no apiVersion and kind is decoded and answered as v1",
			body: func(t testing.TB, _ int) []byte {
				b := bytes.Replace(baseReview(t, nil), []byte(`"apiVersion":"admission.k8s.io/v1",`), nil, 1)
				return bytes.Replace(b, []byte(`"kind":"AdmissionReview",`), nil, 1)
			},
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
		},
		{
			name:     "an AdmissionReview without request is answered 400 the AdmissionReview holds no request",
			body:     fixed([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`)),
			mutate:   okErrored(400, "the AdmissionReview holds no request"),
			validate: okErrored(400, "the AdmissionReview holds no request"),
		},
		{
			name:     "a request without uid is answered 400 saying the uid is missing",
			body:     reviewOf(func(req, _ map[string]any) { delete(req, "uid") }),
			mutate:   okErrored(400, "the AdmissionReview's request has no uid"),
			validate: okErrored(400, "the AdmissionReview's request has no uid"),
		},
		{
			name: "a ConfigMap sent as request.object under request.kind Pod is refused with 400, not patched",
			body: reviewOf(func(req, pod map[string]any) {
				pod["kind"] = "ConfigMap"
				delete(pod, "spec")
				pod["data"] = map[string]any{"password": secretValue}
			}),
			mutate:   okErrored(400, `request.kind is v1/Pod but request.object has apiVersion "v1" and kind "ConfigMap"`),
			validate: okErrored(400, `request.kind is v1/Pod but request.object has apiVersion "v1" and kind "ConfigMap"`),
		},
		{
			name: "a ConfigMap under request.kind ConfigMap is allowed untouched because runtimeguard reviews only Pods",
			body: reviewOf(func(req, pod map[string]any) {
				req["kind"] = map[string]any{"group": "", "version": "v1", "kind": "ConfigMap"}
				req["resource"] = map[string]any{"group": "", "version": "v1", "resource": "configmaps"}
				pod["kind"] = "ConfigMap"
				delete(pod, "spec")
			}),
			mutate:   okAllowed("runtimeguard reviews only core/v1 Pods, not v1/ConfigMap"),
			validate: okAllowed("runtimeguard reviews only core/v1 Pods, not v1/ConfigMap"),
		},
		{
			name:     "a request.uid of the wrong type is answered 400 naming the field and the types, never the value",
			body:     reviewOf(func(req, _ map[string]any) { req["uid"] = map[string]any{"token": secretValue} }),
			mutate:   okErrored(400, decodeErr, `field "request.uid" has the wrong type (object, want types.UID)`),
			validate: okErrored(400, decodeErr, `field "request.uid" has the wrong type (object, want types.UID)`),
		},
		{
			name:     "request.object that is a JSON string is answered 400 naming the type",
			body:     reviewOf(func(req, _ map[string]any) { req["object"] = secretValue }),
			mutate:   okErrored(400, malformed, "it is a string, want an object"),
			validate: okErrored(400, malformed, "it is a string, want an object"),
		},
		// The Pod.
		{
			name: "a Pod with unknown fields everywhere is decided on the fields policies read",
			body: reviewOf(func(req, pod map[string]any) {
				req["futureField"] = map[string]any{"x": []any{1, 2}}
				pod["futureTopLevel"] = true
				pod["metadata"].(map[string]any)["futureMeta"] = "x"
				spec := pod["spec"].(map[string]any)
				spec["futureSpec"] = map[string]any{"nested": map[string]any{"deep": secretValue}}
				spec["containers"].([]any)[0].(map[string]any)["futureContainer"] = []any{"a"}
			}),
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
		},
		// Placement: the mutating webhook sees it before the API server validates it.
		{
			name:     "required node affinity with an unknown operator is refused naming the field",
			body:     withAffinity(map[string]any{"matchExpressions": []any{map[string]any{"key": "pool", "operator": "Near", "values": []any{"a"}}}}),
			mutate:   okErrored(400, invalidPlacement, `nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: "Near"`),
			validate: okErrored(400, invalidPlacement, `nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: "Near"`),
		},
		{
			name:     "Gt with a value that is not an integer is refused naming the field",
			body:     withAffinity(map[string]any{"matchExpressions": []any{map[string]any{"key": "rank", "operator": "Gt", "values": []any{"high"}}}}),
			mutate:   okErrored(400, invalidPlacement, `matchExpressions[0].values[0]: Invalid value: "high"`),
			validate: okErrored(400, invalidPlacement, `matchExpressions[0].values[0]: Invalid value: "high"`),
		},
		{
			name:     "an empty nodeSelectorTerm is refused: it matches no node",
			body:     withAffinity(map[string]any{}),
			mutate:   okErrored(400, invalidPlacement, `nodeSelectorTerms[0]: Invalid value: "{}": an empty term matches no node`),
			validate: okErrored(400, invalidPlacement, `nodeSelectorTerms[0]: Invalid value: "{}": an empty term matches no node`),
		},
		{
			name: "a 10,000-term node affinity is refused before any evaluation",
			body: func(t testing.TB, _ int) []byte {
				terms := make([]any, 10000)
				for i := range terms {
					terms[i] = map[string]any{"matchExpressions": []any{map[string]any{"key": "pool", "operator": "In", "values": []any{fmt.Sprint(i)}}}}
				}
				return withAffinity(terms...)(t, 0)
			},
			mutate:   okErrored(400, invalidPlacement, `nodeSelectorTerms: Too many: 10000: must have at most 100 items`),
			validate: okErrored(400, invalidPlacement, `nodeSelectorTerms: Too many: 10000: must have at most 100 items`),
		},
		{
			name: "a toleration with an unknown effect is refused naming the field",
			body: reviewOf(func(_, pod map[string]any) {
				pod["spec"].(map[string]any)["tolerations"] = []any{map[string]any{"key": "a", "operator": "Exists", "effect": "NoRun"}}
			}),
			mutate:   okErrored(400, `pod placement is invalid: spec.tolerations[0].effect: Unsupported value: "NoRun"`),
			validate: okErrored(400, `pod placement is invalid: spec.tolerations[0].effect: Unsupported value: "NoRun"`),
		},
		{
			name: "node affinity of the wrong JSON type is a decode error",
			body: reviewOf(func(_, pod map[string]any) {
				pod["spec"].(map[string]any)["affinity"] = map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": "pool=a"}}
			}),
			mutate:   okErrored(400, malformed, `field "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution" has the wrong type (string, want v1.NodeSelector)`),
			validate: okErrored(400, malformed, `field "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution" has the wrong type (string, want v1.NodeSelector)`),
		},
		{
			name: "a Pod with 500 containers is decided",
			body: func(t testing.TB, v int) []byte {
				return baseReview(t, func(_, pod map[string]any) { pod["spec"].(map[string]any)["containers"] = containers(500, v) })
			},
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
			worst:    true,
		},
		{
			name: "a Pod with 1 MiB of annotations is decided",
			body: func(t testing.TB, v int) []byte {
				return baseReview(t, func(_, pod map[string]any) {
					pod["metadata"].(map[string]any)["annotations"] = annotations(1<<20, v)
				})
			},
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
			worst:    true,
		},
		{
			name: "a Pod with 128 KiB of annotations is decided, and such Pods fill the decision cache only up to its byte bound",
			body: func(t testing.TB, v int) []byte {
				return baseReview(t, func(_, pod map[string]any) {
					pod["metadata"].(map[string]any)["annotations"] = annotations(128<<10, v)
				})
			},
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
			worst:    true,
		},
		{
			name: "an unknown field nested 9,990 levels deep is skipped and the Pod decided",
			body: func(t testing.TB, v int) []byte {
				b := baseReview(t, func(_, pod map[string]any) {
					pod["spec"].(map[string]any)["futureSpec"] = "__raw__"
					pod["metadata"].(map[string]any)["labels"].(map[string]any)["variant"] = fmt.Sprint(v)
				})
				return withRaw(t, b, nested(9990))
			},
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
			worst:    true,
		},
		{
			name: "JSON nested 10,000 levels is answered 400 exceeded max depth",
			body: func(t testing.TB, _ int) []byte {
				b := baseReview(t, func(_, pod map[string]any) { pod["spec"].(map[string]any)["futureSpec"] = "__raw__" })
				return withRaw(t, b, nested(10000))
			},
			mutate:   okErrored(400, decodeErr, "exceeded max depth"),
			validate: okErrored(400, decodeErr, "exceeded max depth"),
			worst:    true,
		},
		{
			name: "an annotation value holding 10,000 levels of brackets as text is just a string",
			body: reviewOf(func(_, pod map[string]any) {
				pod["metadata"].(map[string]any)["annotations"].(map[string]any)["example.com/brackets"] = nested(10000)
			}),
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
		},
		{
			name: "a duplicate request.namespace is read as its last value, as the API server's own decoder does",
			body: func(t testing.TB, _ int) []byte {
				b := baseReview(t, nil)
				return bytes.Replace(b, []byte(`"namespace":"tenant-a","object"`), []byte(`"namespace":"tenant-a","namespace":"default","object"`), 1)
			},
			mutate:   okAllowed("no runtime class to inject"),
			validate: okAllowed(),
		},
		{
			name: "a duplicate spec.runtimeClassName is read as its last value",
			body: func(t testing.TB, _ int) []byte {
				b := baseReview(t, func(_, pod map[string]any) { pod["spec"].(map[string]any)["runtimeClassName"] = "__raw__" })
				return withRaw(t, b, `"kata","runtimeClassName":"gvisor"`)
			},
			mutate:   okAllowed(`spec.runtimeClassName is already "gvisor"`),
			validate: okAllowed(),
		},
		{
			name: "invalid UTF-8 in a label is decoded as U+FFFD and the Pod decided",
			body: func(t testing.TB, _ int) []byte {
				b := baseReview(t, func(_, pod map[string]any) {
					pod["metadata"].(map[string]any)["labels"].(map[string]any)["team"] = "__raw__"
				})
				return withRaw(t, b, "\"pay\xff\xfements\xc3\"")
			},
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet),
		},
		{
			name: "a resource quantity that is an object is answered 400 naming its type, never its content",
			body: reviewOf(func(_, pod map[string]any) {
				c := pod["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
				c["resources"].(map[string]any)["limits"].(map[string]any)["nvidia.com/gpu"] = map[string]any{"token": secretValue}
			}),
			mutate:   okErrored(400, malformed, "a resource quantity is an object, want a string or number"),
			validate: okErrored(400, malformed, "a resource quantity is an object, want a string or number"),
			worst:    true,
		},
		{
			name: "resourceClaims with nonsense entries are decided, each entry unresolved and named in a warning",
			body: reviewOf(func(_, pod map[string]any) {
				pod["spec"].(map[string]any)["resourceClaims"] = []any{
					nil, map[string]any{}, map[string]any{"name": "both", "resourceClaimName": "a", "resourceClaimTemplateName": "b"},
					map[string]any{"name": "gpu", "resourceClaimTemplateName": "missing", "futureField": secretValue},
				}
			}),
			mutate: okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet).warning(
				`resource claim "" of the pod in namespace "tenant-a" is not resolved: spec.resourceClaims[0] sets neither resourceClaimName nor resourceClaimTemplateName; set exactly one`,
				`resource claim "both" of the pod in namespace "tenant-a" is not resolved: spec.resourceClaims[2] sets both resourceClaimName and resourceClaimTemplateName`,
				`resource claim "gpu" of the pod in namespace "tenant-a" is not resolved: ResourceClaimTemplate "missing" not found in namespace "tenant-a"; create it before the Pod`,
			),
		},
		{
			name: "a Pod with 500 resourceClaims is decided, each unresolved one warned about",
			body: reviewOf(func(_, pod map[string]any) {
				claims := make([]any, 500)
				for i := range claims {
					claims[i] = map[string]any{"name": fmt.Sprint("c", i), "resourceClaimName": fmt.Sprint("claim-", i)}
				}
				pod["spec"].(map[string]any)["resourceClaims"] = claims
			}),
			mutate:   okPatched("gvisor", `injected runtime class "gvisor"`),
			validate: okDenied(notSetYet).warning(`resource claim "c0" of the pod in namespace "tenant-a" is not resolved`, `resource claim "c499" of the pod in namespace "tenant-a" is not resolved`),
		},
		{
			name: "resourceClaims that is an object is answered 400 naming the field, never its content",
			body: reviewOf(func(_, pod map[string]any) {
				pod["spec"].(map[string]any)["resourceClaims"] = map[string]any{"name": secretValue}
			}),
			mutate:   okErrored(400, malformed, "spec.resourceClaims"),
			validate: okErrored(400, malformed, "spec.resourceClaims"),
		},
		// Cluster state.
		{
			name: "a RuntimeClass deleted between mutate and validate makes validate deny it as not found",
			admitter: func(t *testing.T) *Pipeline {
				return newPipeline(t, setup{})
			},
			body:   reviewOf(nil),
			mutate: okPatched("gvisor", `injected runtime class "gvisor"`),
			between: func(_ *testing.T, a *Pipeline) {
				a.cfg.View.DeleteRuntimeClass("gvisor")
			},
			validateBody: patchedBody,
			validate:     okDenied(`RuntimeClass "gvisor" not found; existing runtime classes: kata, nvidia, wasm-spin; create it or fix spec.runtimeClassName`),
		},
		{
			name: "a Node with no status counts as not Ready, so a class only it could run is denied with the node count",
			admitter: func(t *testing.T) *Pipeline {
				return pipelineOver(t, cluster.Options{}, func(v *cluster.View) {
					v.UpsertRuntimeClass(gvisorClass)
					v.UpsertNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "bare", Labels: gvisorClass.Scheduling.NodeSelector}})
				})
			},
			body:     inDefaultNaming("gvisor"),
			validate: okDenied(`RuntimeClass "gvisor" (handler "runsc"): no Ready, schedulable node advertises handler "runsc" (0 of 1 nodes`),
		},
		{
			name: "a Node advertising 5,000 runtime handlers is read and the class it runs admitted",
			admitter: func(t *testing.T) *Pipeline {
				return pipelineOver(t, cluster.Options{}, func(v *cluster.View) {
					v.UpsertRuntimeClass(gvisorClass)
					handlers := make([]string, 5000)
					for i := range handlers {
						handlers[i] = fmt.Sprintf("handler-%d", i)
					}
					handlers[4321] = "runsc"
					v.UpsertNode(readyNode("many", gvisorClass.Scheduling.NodeSelector, handlers...))
				})
			},
			body:     inDefaultNaming("gvisor"),
			mutate:   okAllowed(`spec.runtimeClassName is already "gvisor"`),
			validate: okAllowed(),
		},
		{
			name: "a RuntimeClass with an empty handler is denied because no node can run it",
			admitter: func(t *testing.T) *Pipeline {
				return pipelineOver(t, cluster.Options{}, func(v *cluster.View) {
					v.UpsertRuntimeClass(&nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "blank"}})
					v.UpsertNode(readyNode("n", nil, "", "runc"))
				})
			},
			body:     inDefaultNaming("blank"),
			validate: okDenied(`RuntimeClass "blank" (handler ""): the RuntimeClass has an empty handler, so no node can run it`),
		},
		{
			name: "a namespace missing from the cache is read through the NamespaceGetter, once per review",
			admitter: func(t *testing.T) *Pipeline {
				getterCalls.Store(0)
				return pipelineOver(t, cluster.Options{NamespaceGetter: func(_ context.Context, name string) (*cluster.Namespace, error) {
					getterCalls.Add(1)
					return &cluster.Namespace{Name: name, Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}}, nil
				}}, func(v *cluster.View) {
					v.DeleteNamespace("tenant-a")
					v.UpsertRuntimeClass(gvisorClass)
					v.UpsertNode(readyNode("sandbox", gvisorClass.Scheduling.NodeSelector, "runc", "runsc"))
				})
			},
			body:   reviewOf(nil),
			mutate: okPatched("gvisor", `injected runtime class "gvisor"`),
			between: func(t *testing.T, _ *Pipeline) {
				if n := getterCalls.Load(); n != 1 {
					t.Errorf("the NamespaceGetter was called %d times for one review, want 1", n)
				}
			},
			validate: okDenied(notSetYet),
		},
		{
			name: "a NamespaceGetter error is answered 500 naming the namespace and the error",
			admitter: func(t *testing.T) *Pipeline {
				return pipelineOver(t, cluster.Options{NamespaceGetter: func(context.Context, string) (*cluster.Namespace, error) {
					return nil, errors.New(`namespaces "tenant-a" is forbidden: User "system:serviceaccount:runtimeguard-system:runtimeguard" cannot get resource "namespaces"`)
				}}, func(v *cluster.View) { v.DeleteNamespace("tenant-a") })
			},
			body:     reviewOf(nil),
			mutate:   okErrored(500, `reading namespace "tenant-a": namespaces "tenant-a" is forbidden`),
			validate: okErrored(500, `reading namespace "tenant-a": namespaces "tenant-a" is forbidden`),
		},
		{
			name:     "a view that has not synced yet is answered 503 asking to retry",
			admitter: func(t *testing.T) *Pipeline { return newPipeline(t, setup{unsynced: true}) },
			body:     reviewOf(nil),
			mutate:   okErrored(503, "runtimeguard's cluster view is not synced yet; retry in a few seconds"),
			validate: okErrored(503, "runtimeguard's cluster view is not synced yet; retry in a few seconds"),
		},
		// Policies that misbehave at evaluation.
		{
			name: "a policy that loops is cut at the evaluation deadline and fails closed with 500 in enforce mode",
			admitter: func(t *testing.T) *Pipeline {
				return pipelineWithPolicy(t, loopingPolicy, 200*time.Millisecond, Enforce)
			},
			body:     reviewOf(nil),
			mutate:   okErrored(500, `runtimeguard could not decide for a pod in namespace "tenant-a": policy evaluation did not finish within 200ms`),
			validate: okErrored(500, `runtimeguard could not decide for a pod in namespace "tenant-a": policy evaluation did not finish within 200ms`),
		},
		{
			name:     "a policy that loops is cut at the evaluation deadline and the Pod allowed with a warning in warn mode",
			admitter: func(t *testing.T) *Pipeline { return pipelineWithPolicy(t, loopingPolicy, 200*time.Millisecond, Warn) },
			body:     reviewOf(nil),
			mutate:   okAllowed("policy failed in warn mode").warning("runtimeguard could not decide (warn mode, allowed): policy evaluation did not finish within 200ms"),
			validate: okAllowed("policy failed in warn mode").warning("runtimeguard could not decide (warn mode, allowed): policy evaluation did not finish within 200ms"),
		},
		{
			name:     "a policy whose decision.deny is a string is answered 500 naming the field",
			admitter: func(t *testing.T) *Pipeline { return pipelineWithPolicy(t, denyIsAStringPolicy, 0, Enforce) },
			body:     reviewOf(nil),
			mutate:   okErrored(500, "policy returned the wrong shape: decision.deny is a string, want a set or array of strings"),
			validate: okErrored(500, "policy returned the wrong shape: decision.deny is a string, want a set or array of strings"),
		},
	}
}

// patchedBody applies the mutate answer's patch to the object of body, as the API server does
// before it calls the validating webhook.
func patchedBody(t *testing.T, body []byte, mutated badAnswer) []byte {
	t.Helper()
	var review map[string]any
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	req := review["request"].(map[string]any)
	pod, _ := json.Marshal(req["object"])
	patched, err := applyPatch(pod, mutated.review.Response.Patch)
	if err != nil {
		t.Fatalf("the patch does not apply: %v", err)
	}
	req["object"] = json.RawMessage(patched)
	b, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadInput(t *testing.T) {
	srv := startBadInputServer(t)
	def := newPipeline(t, setup{})
	for _, tc := range badInputCases() {
		t.Run(tc.name, func(t *testing.T) {
			a := def
			if tc.admitter != nil {
				a = tc.admitter(t)
			}
			srv.admitter.Store(a)
			contentType := tc.contentType
			if contentType == "" {
				contentType = "application/json"
			}
			body := tc.body(t, 0)
			post := srv.post
			if tc.http1 {
				post = func(t *testing.T, path, contentType string, body []byte) badAnswer {
					return srv.postWith(t, srv.http1, 1, path, contentType, body)
				}
			}
			takeLogs()
			var mutated badAnswer
			if tc.mutate != nil {
				mutated = post(t, MutatePath, contentType, body)
				check(t, "mutate", mutated, tc.mutate)
			}
			if tc.between != nil {
				tc.between(t, a)
			}
			if tc.validate != nil {
				vbody := body
				if tc.validateBody != nil {
					vbody = tc.validateBody(t, body, mutated)
				}
				check(t, "validate", post(t, ValidatePath, contentType, vbody), tc.validate)
			}
			checkLogs(t, takeLogs())
		})
	}
}

// The worst inputs, each sent 200 times, to the two endpoints in turn and different every time
// (as an attacker would send them, so that no cache answers): afterwards no goroutine is left
// behind and the heap has not grown by more than the decision cache's byte bound allows.
func TestBadInputDoesNotLeak(t *testing.T) {
	srv := startBadInputServer(t)
	a := newPipeline(t, setup{})
	srv.admitter.Store(a)
	goroutines := func() int {
		srv.client.CloseIdleConnections()
		return runtime.NumGoroutine()
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, tc := range badInputCases() {
		if !tc.worst {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			const reps = 200
			// Warm up: the first requests allocate pools and connections that stay.
			for i := range 3 {
				srv.post(t, MutatePath, "application/json", tc.body(t, -1-i))
			}
			takeLogs()
			beforeG, beforeH := settle(goroutines, 0, time.Second), heap()
			for i := range reps {
				if i%2 == 0 {
					check(t, "mutate", srv.post(t, MutatePath, "application/json", tc.body(t, i)), tc.mutate)
				} else {
					check(t, "validate", srv.post(t, ValidatePath, "application/json", tc.body(t, i)), tc.validate)
				}
				if t.Failed() {
					t.FailNow()
				}
			}
			checkLogs(t, takeLogs())
			if got := settle(goroutines, beforeG+2, 10*time.Second); got > beforeG+2 {
				t.Errorf("%d goroutines after %d requests, %d before", got, reps, beforeG)
			}
			afterH := heap()
			runtime.KeepAlive(a)
			const bound = 24 << 20 // the decision cache may keep its byte bound of inputs alive
			if afterH > beforeH && afterH-beforeH > bound {
				t.Errorf("the heap grew by %d MiB over %d requests (from %d MiB to %d MiB), bound %d MiB",
					(afterH-beforeH)>>20, reps, beforeH>>20, afterH>>20, bound>>20)
			}
		})
	}
}

// settle polls count until it is at most want, for up to wait, and returns the last count.
func settle(count func() int, want int, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		n := count()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Policies that cannot be served are refused when loaded from disk the way serve loads
// --policies (LoadPolicies, then NewEngine), with the file and row, and for forbidden builtins
// the reason runtimeguard forbids them.
func TestBadInputPolicies(t *testing.T) {
	const decision = "package runtimeguard\n\ndecision := {\"class\": \"\", \"deny\": [], \"warn\": [], \"reasons\": []}\n\n"
	const hint = "(runtimeguard forbids http.send, net.*, opa.runtime, time.now_ns, rand.intn, uuid.rfc4122 and trace: policies must not reach the network and must be deterministic)"
	tests := []struct {
		name   string
		policy string
		// fragments of the error, in order
		want []string
	}{
		{
			name:   "broken Rego is refused naming the file and row",
			policy: decision + "warn contains msg if {\n\tmsg := \"unterminated\n}\n",
			want:   []string{"policy.rego:6:", "rego_parse_error"},
		},
		{
			name:   "a policy without the decision rule is refused",
			policy: "package runtimeguard\n\nclass := \"gvisor\"\n",
			want:   []string{"no module defines data.runtimeguard.decision"},
		},
		{
			name:   "http.send is refused with the runtimeguard hint",
			policy: decision + "warn contains msg if {\n\tmsg := http.send({\"method\": \"get\", \"url\": \"https://example.com\"}).body\n}\n",
			want:   []string{"policy.rego:6:", "undefined function http.send", hint},
		},
		{
			name:   "net.lookup_ip_addr is refused with the runtimeguard hint",
			policy: decision + "warn contains msg if {\n\tips := net.lookup_ip_addr(\"example.com\")\n\tmsg := sprintf(\"%v\", [ips])\n}\n",
			want:   []string{"policy.rego:6:", "undefined function net.lookup_ip_addr", hint},
		},
		{
			name:   "opa.runtime is refused with the runtimeguard hint",
			policy: decision + "warn contains msg if {\n\tmsg := opa.runtime().env.HOME\n}\n",
			want:   []string{"policy.rego:6:", "undefined function opa.runtime", hint},
		},
		{
			name:   "time.now_ns is refused with the runtimeguard hint",
			policy: decision + "warn contains msg if {\n\ttime.now_ns() > 0\n\tmsg := \"now\"\n}\n",
			want:   []string{"policy.rego:6:", "undefined function time.now_ns", hint},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "policy.rego"), []byte(tt.policy), 0o644); err != nil {
				t.Fatal(err)
			}
			set, err := (&Options{PolicyDirs: []string{dir}}).LoadPolicies()
			if err == nil {
				_, err = policy.NewEngine(t.Context(), set, 0)
			}
			if err == nil {
				t.Fatal("the policy loaded and compiled, want an error")
			}
			rest := err.Error()
			for _, frag := range tt.want {
				i := strings.Index(rest, frag)
				if i < 0 {
					t.Fatalf("error\n%s\nlacks (in order) %q", err, frag)
				}
				rest = rest[i+len(frag):]
			}
		})
	}
}

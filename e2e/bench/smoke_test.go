// Package bench holds the smoke test of the benchmark tools (the tools themselves live in the
// sub-packages; e2e/bench/run.sh runs the benchmarks). The test builds every tool and runs each
// briefly, verifying answers but asserting no performance target.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	admissionv1 "k8s.io/api/admission/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/certs"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/baseline"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/godecide"
	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
	"github.com/runtimeguard/runtimeguard/webhook/serve"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestToolsBuildAndRun builds loadgen, baseline, minimal, genfixtures and runner, then runs
// them: the fixtures generator, the baseline webhook as a process with the load generator
// verifying 200 answers over HTTP/1.1 and 100 over HTTP/2, the minimal webhook on both paths
// with the benchmark Pod, distinct Pods and the realistic mix, the runner's in-process scaling
// measurement on the two smallest clusters and its profile table.
func TestToolsBuildAndRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+"/", "./loadgen", "./baseline", "./minimal", "./genfixtures", "./runner")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	clusterFile, opaData := filepath.Join(dir, "cluster.yaml"), filepath.Join(dir, "opa-data.json")
	run("genfixtures", "--nodes=30", "--classes=10", "--namespaces=50", "--cluster="+clusterFile, "--opa-data="+opaData)
	certDir := filepath.Join(dir, "certs")
	if _, err := certs.WriteDevCerts(certDir, []string{"localhost", "127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}

	port, health := freePort(t), freePort(t)
	srv := exec.Command(filepath.Join(bin, "baseline"), "--cluster="+clusterFile, "--cert-dir="+certDir,
		"--bind-address=127.0.0.1", "--port="+strconv.Itoa(port), fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", health),
		"--metrics-bind-address=0")
	var srvLog bytes.Buffer
	srv.Stdout, srv.Stderr = &srvLog, &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", health), &srvLog)

	url := fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", port)
	ca := filepath.Join(certDir, "ca.crt")
	pid := strconv.Itoa(srv.Process.Pid)
	out := run("loadgen", "--url="+url, "--ca="+ca, "--requests=200", "--warmup=20", "--concurrency=4", "--server-pid="+pid, "--label=smoke-h1")
	if !strings.Contains(out, "err=0") || !strings.Contains(out, "cpu/adm=") {
		t.Errorf("loadgen output: %s", out)
	}
	out = run("loadgen", "--url="+url, "--ca="+ca, "--requests=100", "--warmup=10", "--concurrency=4", "--http2", "--unique", "--json")
	var res load.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("loadgen --json: %v\n%s", err, out)
	}
	if res.Requests != 100 || res.Errors != 0 || res.Proto != "HTTP/2.0" {
		t.Errorf("HTTP/2 run: %+v", res)
	}
	// The placement mixes, each Pod verified against its own class.
	for _, mix := range []string{"pool", "bound"} {
		out = run("loadgen", "--url="+url, "--ca="+ca, "--requests=120", "--warmup=12", "--concurrency=4", "--mix="+mix, "--nodes=30", "--label=smoke-"+mix)
		if !strings.Contains(out, "err=0") {
			t.Errorf("loadgen --mix %s: %s", mix, out)
		}
	}
	// Open loop, briefly.
	run("loadgen", "--url="+url, "--ca="+ca, "--rate=200", "--requests=100", "--warmup=0", "--concurrency=4", "--duration=5s")

	// Verification catches a wrong answer: expecting another class fails the run.
	cmd := exec.Command(filepath.Join(bin, "loadgen"), "--url="+url, "--ca="+ca, "--requests=10", "--warmup=0", "--expect-class=kata")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "failed verification") {
		t.Errorf("loadgen accepted answers injecting gvisor while expecting kata: %v\n%s", err, b)
	}
	// Only loopback targets.
	cmd = exec.Command(filepath.Join(bin, "loadgen"), "--url=https://192.0.2.1:9443/mutate-v1-pod", "--ca="+ca, "--requests=1")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "refusing") {
		t.Errorf("loadgen did not refuse a non-loopback target: %v\n%s", err, b)
	}

	// The minimal webhook, both paths: each answer verified like every contender's.
	port, health = freePort(t), freePort(t)
	minimal := exec.Command(filepath.Join(bin, "minimal"), "--cluster="+clusterFile, "--cert-dir="+certDir,
		"--bind-address=127.0.0.1", "--port="+strconv.Itoa(port), fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", health))
	var minimalLog bytes.Buffer
	minimal.Stdout, minimal.Stderr = &minimalLog, &minimalLog
	if err := minimal.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = minimal.Process.Kill(); _ = minimal.Wait() })
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", health), &minimalLog)
	mutate, validate := fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", port), fmt.Sprintf("https://127.0.0.1:%d/validate-v1-pod", port)
	pid = strconv.Itoa(minimal.Process.Pid)
	for _, args := range [][]string{
		{"--url=" + mutate},
		{"--url=" + mutate, "--unique"},
		{"--url=" + mutate, "--mix=realistic"},
		{"--url=" + validate, "--validate"},
		{"--url=" + validate, "--validate", "--unique"},
		{"--url=" + validate, "--validate", "--mix=realistic"},
	} {
		out = run("loadgen", append(args, "--ca="+ca, "--requests=100", "--warmup=10", "--concurrency=4", "--nodes=30", "--server-pid="+pid, "--label=smoke-minimal")...)
		if !strings.Contains(out, "err=0") || !strings.Contains(out, "cpu/adm=") {
			t.Errorf("loadgen %v against the minimal webhook: %s", args, out)
		}
	}
	// The validating webhook denies the benchmark Pod that names no class: verification says so.
	cmd = exec.Command(filepath.Join(bin, "loadgen"), "--url="+validate, "--ca="+ca, "--requests=10", "--warmup=0", "--expect-class=")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "not allowed") {
		t.Errorf("loadgen accepted the validating webhook's answers for a Pod without a class: %v\n%s", err, b)
	}

	out = run("runner", "profile", "--n=5000", "--top=5", "--validate", "--mix=realistic", "--nodes=30")
	if !strings.Contains(out, "/validate-v1-pod, mix realistic") || !strings.Contains(out, "Top 5 functions by cumulative") || !strings.Contains(out, "| function | flat us/adm. |") {
		t.Errorf("runner profile output: %s", out)
	}

	out = run("runner", "scaling", "--sizes=2", "--rounds=1", "--hits=200", "--misses=20", "--e2e-rounds=0")
	if !strings.Contains(out, "| 100 nodes, 10 classes, 100 namespaces |") {
		t.Errorf("runner scaling output: %s", out)
	}
}

// TestRuntimeguardServesTheBenchmarkReview runs `runtimeguard serve --cluster` in-process on a
// generated cluster and checks its answers with the load generator.
func TestRuntimeguardServesTheBenchmarkReview(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clusterFile := filepath.Join(dir, "cluster.yaml")
	f, err := os.Create(clusterFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := fixtures.Generate(fixtures.Size{Nodes: 30, Classes: 10, Namespaces: 50}).WriteYAML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dc, err := certs.WriteDevCerts(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	o := serve.DefaultOptions()
	o.Port, o.BindAddress, o.CertDir, o.ClusterFiles = freePort(t), "127.0.0.1", dir, []string{clusterFile}
	o.HealthProbeBindAddress, o.MetricsBindAddress = fmt.Sprintf("127.0.0.1:%d", freePort(t)), "0"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, o) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReady(t, "http://"+o.HealthProbeBindAddress+"/readyz", nil)
	for _, validate := range []bool{false, true} {
		url := fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", o.Port)
		if validate {
			url = fmt.Sprintf("https://127.0.0.1:%d/validate-v1-pod", o.Port)
		}
		for _, unique := range []bool{false, true} {
			res, err := load.Run(ctx, load.Config{URL: url, RootCAs: dc.CertPool(), Validate: validate,
				Concurrency: 4, Requests: 200, Warmup: 10, Unique: unique, ExpectClass: review.ExpectedClass, ServerPID: os.Getpid()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Requests != 200 {
				t.Fatalf("validate=%v unique=%v: %s", validate, unique, res)
			}
		}
		mixes, mix := []string{"pool", "bound", "realistic"}, review.Mix
		if validate {
			mixes, mix = []string{"template", "realistic"}, review.ValidateMix
		}
		for _, m := range mixes {
			vs, err := mix(m, 30)
			if err != nil {
				t.Fatal(err)
			}
			res, err := load.Run(ctx, load.Config{URL: url, RootCAs: dc.CertPool(), Concurrency: 4, Requests: 120, Warmup: 12, Mix: vs})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Requests != 120 {
				t.Fatalf("validate=%v mix %s: %s", validate, m, res)
			}
		}
	}
}

func waitReady(t *testing.T, url string, log *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log != nil {
		t.Fatalf("%s not ready after 20s; log:\n%s", url, log)
	}
	t.Fatalf("%s not ready after 20s", url)
}

func TestReviewIsRealisticAndUnique(t *testing.T) {
	t.Parallel()
	tmpl, err := review.NewTemplate(review.Pod())
	if err != nil {
		t.Fatal(err)
	}
	if n := tmpl.Size(); n < 6800 || n > 7800 {
		t.Errorf("review is %d bytes, want about 7.2 KB", n)
	}
	a, b := tmpl.Body(nil, 1, true), tmpl.Body(nil, 2, true)
	if len(a) != len(b) || bytes.Equal(a, b) {
		t.Error("unique bodies must differ and keep their length")
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(a, &ar); err != nil || ar.Request.UID != types.UID(review.UID(1)) {
		t.Fatalf("body 1 does not decode with its uid: %v", err)
	}
	if err := load.CheckLoopback("https://10.1.2.3:443/x"); err == nil {
		t.Error("CheckLoopback accepted a private address")
	}
	for _, ok := range []string{"https://127.0.0.1:9443/m", "https://[::1]:9443/m", "https://127.8.9.1/m"} {
		if err := load.CheckLoopback(ok); err != nil {
			t.Errorf("CheckLoopback(%s): %v", ok, err)
		}
	}
}

// TestGoBaselineDecidesLikeThePolicy keeps the baseline honest: over a matrix of Pods and
// namespaces, on the shipped test cluster and on a generated one, the hand-coded Go decision
// equals data.runtimeguard.decision from the Rego policy.
func TestGoBaselineDecidesLikeThePolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	set, err := (&webhook.Options{}).LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	pol, err := godecide.Load()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := cluster.LoadFiles(cluster.Options{}, "../../webhook/testdata/cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]*cluster.View{
		"shipped":   shipped,
		"generated": fixtures.Generate(fixtures.Size{Nodes: 30, Classes: 12, Namespaces: 40}).View(),
		"no nodes":  fixtures.Generate(fixtures.Size{Nodes: 0, Classes: 5}).View(),
	}
	// A cluster where nothing runs gVisor or Kata: denials and skipped classes.
	bare := cluster.NewView(cluster.Options{})
	for _, rc := range fixtures.Generate(fixtures.Size{Classes: 6}).Classes {
		bare.UpsertRuntimeClass(rc)
	}
	views["no runtimes"] = bare

	namespaces := []*cluster.Namespace{
		{Name: "plain"},
		{Name: "u", Labels: map[string]string{"runtimeguard.io/tenancy": "untrusted"}},
		{Name: "f", Labels: map[string]string{"runtimeguard.io/tenancy": "financial"}},
		{Name: "typo", Labels: map[string]string{"runtimeguard.io/tenency": "untrusted", "runtimeguard.io/enforcement": "Warn"}},
	}
	// A GPU claim template in every namespace; claim "gpu" resolves, "early" does not.
	gpuTemplate := &resourcev1.ResourceClaimTemplate{Spec: resourcev1.ResourceClaimTemplateSpec{Spec: resourcev1.ResourceClaimSpec{
		Devices: resourcev1.DeviceClaim{Requests: []resourcev1.DeviceRequest{{Name: "gpu", Exactly: &resourcev1.ExactDeviceRequest{DeviceClassName: "gpu.nvidia.com"}}}}}}}
	for _, view := range views {
		for _, ns := range namespaces {
			tmpl := gpuTemplate.DeepCopy()
			tmpl.Namespace, tmpl.Name = ns.Name, "single-gpu"
			view.Claims().UpsertTemplate(tmpl)
		}
	}
	claimVariants := [][]cluster.ClaimRef{nil,
		{{Name: "gpu", ResourceClaimTemplateName: ptr.To("single-gpu")}},
		{{Name: "early", ResourceClaimTemplateName: ptr.To("single-gpu-v2")}}}
	type podCase struct {
		labels       map[string]string
		gpu          string
		class        string
		nodeSelector map[string]string
		claims       []cluster.ClaimRef
		placement    string // JSON merged into the Pod: nodeName, nodeSelector, affinity, tolerations
	}
	var pods []podCase
	for _, l := range []map[string]string{nil, {"runtimeguard.io/workload": "untrusted"}, {"runtimeguard.io/workload": "gpu"}, {"runtimeguard.io/workload": "financial"},
		{"runtimeguard.io/workload": "Untrusted"}, {"runtimeguard.io/tenancy": "untrusted"}} {
		for _, gpu := range []string{"", "1"} {
			for _, class := range []string{"", "gvisor", "kata", "nvidia", "runc", "kata-nvidia-gpu"} {
				for _, sel := range []map[string]string{nil, {"sandbox.runtimeguard.io/gvisor": "false"}} {
					pods = append(pods, podCase{l, gpu, class, sel, claimVariants[len(pods)%len(claimVariants)], ""})
				}
			}
		}
	}
	// Placement: selectors, bound and pinned Pods, zone affinity and tolerations, on the
	// generated clusters' pools (node i%10 == 0 gVisor, 1 Kata, >= 4 general) and the shipped
	// cluster's nodes.
	pin := func(node string) string {
		return `"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["` + node + `"]}]}]}}}`
	}
	zone := func(op, values string) string {
		return `"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"topology.kubernetes.io/zone","operator":"` + op + `","values":[` + values + `]}]}]}}}`
	}
	for _, pl := range []string{
		`"nodeSelector":{"kubernetes.io/os":"linux"}`,
		`"nodeSelector":{"kubernetes.io/os":"linux","pool":"sandbox"}`,
		`"nodeSelector":{"pool":"kata"}`,
		`"nodeSelector":{"pool":"general"}`,
		`"nodeName":"node-00010"`, `"nodeName":"node-00004"`, `"nodeName":"node-99999"`, `"nodeName":"sandbox-1"`, `"nodeName":"kata-1"`,
		`"nodeName":"node-00010","nodeSelector":{"pool":"kata"}`,
		pin("node-00011") + `,"tolerations":[{"key":"node.kubernetes.io/unschedulable","operator":"Exists","effect":"NoSchedule"}]`,
		pin("node-00020"), pin("node-00004"), pin("gpu-1"),
		zone("In", `"eu-west-1a"`),
		zone("NotIn", `"eu-west-1a","eu-west-1b"`) + `,"nodeSelector":{"pool":"general"}`,
		`"nodeSelector":{"pool":"sandbox"},"tolerations":[{"key":"sandbox.runtimeguard.io/gvisor","operator":"Exists"}]`,
		`"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In","values":["general"]}]},{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["kata-1","node-00001"]}]}]}}}`,
	} {
		for _, l := range []map[string]string{nil, {"runtimeguard.io/workload": "untrusted"}, {"runtimeguard.io/workload": "gpu"}} {
			for _, class := range []string{"", "gvisor", "kata"} {
				pods = append(pods, podCase{labels: l, class: class, placement: `{"spec":{` + pl + `}}`})
			}
		}
	}
	compared := 0
	for vname, view := range views {
		engine, err := policy.NewEngine(ctx, set, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range namespaces {
			for i, pc := range pods {
				pod := &policy.Pod{}
				pod.Metadata.Namespace, pod.Metadata.Labels = ns.Name, pc.labels
				pod.Spec.NodeSelector = pc.nodeSelector
				pod.Spec.ResourceClaims = pc.claims
				c := policy.Container{Name: "app", Image: "app:1"}
				if pc.gpu != "" {
					c.Resources.Limits = map[string]policy.Quantity{"nvidia.com/gpu": policy.Quantity(pc.gpu), "cpu": "1"}
				}
				pod.Spec.Containers = []policy.Container{c, {Name: "sidecar", Image: "s:1"}}
				if pc.class != "" {
					pod.Spec.RuntimeClassName = &pc.class
				}
				if pc.placement != "" {
					if err := json.Unmarshal([]byte(pc.placement), pod); err != nil {
						t.Fatalf("%s: %v", pc.placement, err)
					}
				}
				// Both decide on the placement the pipeline computes for the Pod.
				snap, reach := view.Reach(pod.Placement(), pod.RuntimeClassName())
				want, _, err := engine.Decide(ctx, policy.Request{Operation: "CREATE", Namespace: ns, Pod: pod, Cluster: snap, Reach: reach, Claims: view.Claims()})
				if err != nil {
					t.Fatal(err)
				}
				got, err := pol.Decide(ns, pod, snap, reach, view.Claims().Resolve(ctx, ns.Name, pod.Spec.ResourceClaims))
				if err != nil {
					t.Fatal(err)
				}
				where := fmt.Sprintf("%s cluster, namespace %s, pod %d %+v", vname, ns.Name, i, pc)
				eq(t, where+": class", got.Class, want.Class)
				eq(t, where+": acceptable", got.Acceptable, sorted(want.Acceptable))
				eq(t, where+": deny", got.Deny, sorted(want.Deny))
				eq(t, where+": warn", got.Warn, sorted(want.Warn))
				eq(t, where+": reasons", got.Reasons, want.Reasons)
				eq(t, where+": traits", got.Traits, want.Traits)
				eq(t, where+": requirements", [2]any{got.Isolation, got.GPU}, [2]any{want.Requirements.Isolation, want.Requirements.GPU})
				compared++
			}
		}
	}
	t.Logf("compared %d decisions", compared)

	// And through the handlers: the benchmark review gets the same patch from both.
	view := fixtures.Generate(fixtures.Size{Nodes: 20, Classes: 10, Namespaces: 10}).View()
	engine, _ := policy.NewEngine(ctx, set, 0)
	rg := webhook.NewPipeline(webhook.Config{Engine: engine, View: view})
	bl := baseline.NewHandler(pol, view, "", nil)
	req := benchRequest(t)
	a, b := rg.Mutate(ctx, req), bl.Mutate(ctx, req)
	eq(t, "patches", fmt.Sprint(b.Patches), fmt.Sprint(a.Patches))
	eq(t, "reasons annotation", b.AuditAnnotations["reasons"], a.AuditAnnotations["reasons"])
}

func benchRequest(t *testing.T) admission.Request {
	t.Helper()
	tmpl, err := review.NewTemplate(review.Pod())
	if err != nil {
		t.Fatal(err)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(tmpl.Body(nil, 7, false), &ar); err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: *ar.Request}
}

// TestOPAAdapterAnswersTheReview evaluates e2e/bench/opa/admission.rego (with the unchanged
// default policy and generated data) the way `opa run --server` does for POST /, and checks
// the answer with the load generator's verifier.
func TestOPAAdapterAnswersTheReview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl := fixtures.Generate(fixtures.Size{Nodes: 20, Classes: 10, Namespaces: 50})
	data, err := cl.OPAData()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dataFile := filepath.Join(dir, "data.json")
	if err := os.WriteFile(dataFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := loader.NewFileLoader().All([]string{"opa/admission.rego", "../../policies/runtimeguard.rego", "../../policies/data.yaml", dataFile})
	if err != nil {
		t.Fatal(err)
	}
	store, err := loaded.Store()
	if err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query("data.system.main"), rego.Store(store), rego.SetRegoVersion(ast.RegoV1)}
	for _, m := range loaded.ParsedModules() {
		opts = append(opts, rego.ParsedModule(m))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := review.NewTemplate(review.Pod())
	if err != nil {
		t.Fatal(err)
	}
	verify := func(body []byte, uid string, v *review.Verifier) {
		t.Helper()
		var input any
		if err := json.Unmarshal(body, &input); err != nil {
			t.Fatal(err)
		}
		rs, err := pq.Eval(ctx, rego.EvalInput(input))
		if err != nil || len(rs) != 1 {
			t.Fatalf("eval: %v %v", rs, err)
		}
		answer, _ := json.Marshal(rs[0].Expressions[0].Value)
		if err := v.Verify(answer, uid); err != nil {
			t.Fatalf("%v\n%s", err, answer)
		}
	}
	verify(tmpl.Body(nil, 3, false), review.UID(3), review.NewVerifier(review.ExpectedClass))
	verify(tmpl.Body(nil, 4, true), review.UID(4), review.NewVerifier(review.ExpectedClass))

	// A Pod in a namespace without requirements gets no patch; kube-system is exempt.
	pod := review.Pod()
	for _, ns := range []string{"default", "kube-system"} {
		pod.Namespace = ns
		raw, _ := json.Marshal(pod)
		ar := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "u-" + types.UID(ns), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Namespace: ns, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}
		body, _ := json.Marshal(ar)
		verify(body, "u-"+ns, review.NewVerifier(""))
	}
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) && !(isEmpty(g) && isEmpty(w)) {
		t.Errorf("%s:\n Go baseline: %s\n Rego policy: %s", what, g, w)
	}
}

func isEmpty(b []byte) bool { s := string(b); return s == "null" || s == "[]" || s == "{}" }

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

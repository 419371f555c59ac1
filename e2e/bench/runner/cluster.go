package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/proc"
	"github.com/runtimeguard/runtimeguard/e2e/bench/load"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

// heapReport is what `runner informer-heap` prints.
type heapReport struct {
	Variant   string        `json:"variant"`
	Sync      time.Duration `json:"sync"`
	HeapInuse uint64        `json:"heapInuse"`
	HeapAlloc uint64        `json:"heapAlloc"`
	RSS       int64         `json:"rss"`
	HWM       int64         `json:"hwm"`
	Nodes     int           `json:"nodes"`
}

// informerVariants: the product's cache options, and what they are made of.
var informerVariants = []struct{ name, what string }{
	{"product", "cluster.CacheOptions(): the caches hold the view's records (a Node's facts, a Namespace's name, labels and annotations), what serve uses"},
	{"strip-managed-fields", "managedFields stripped only (full Nodes, Namespace metadata)"},
	{"plain", "plain cache.Options{}: full objects"},
}

// runCluster is `runner cluster`: a real etcd + kube-apiserver holding realistic Nodes and many
// Namespaces; `runtimeguard serve --kubeconfig` started against it (time to /readyz, memory
// when ready and under load), then the informer variants' heap.
func runCluster(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	c := commonFlags(fs)
	size := fixtures.Size{Realistic: true}
	fs.IntVar(&size.Nodes, "nodes", 5000, "realistic nodes (status.images etc.)")
	fs.IntVar(&size.Namespaces, "namespaces", 10000, "namespaces")
	fs.IntVar(&size.Classes, "classes", 10, "runtime classes")
	workers := fs.Int("workers", 32, "concurrent creates")
	starts := fs.Int("starts", 2, "runtimeguard starts to time")
	n := fs.Int("requests", 6000, "admissions under load after the first start")
	// What charts/runtimeguard deploys by default: goMemLimit.limitPercent 38 of its 128Mi limit.
	memlimit := fs.String("memlimit", "48MiB", "also start runtimeguard with this GOMEMLIMIT (\"\": don't); the default is the chart's")
	mixes := fs.String("mixes", "pool,bound", "placement mixes (review.Mix) sent after the load, at c=8 (\"\": none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := c.env()
	if err != nil {
		return err
	}
	t0 := time.Now()
	cp, err := controlplane.Start(controlplane.Options{BinDir: e.bin})
	if err != nil {
		return err
	}
	defer cp.Stop()
	fmt.Fprintf(os.Stderr, "cluster: etcd + kube-apiserver up in %s\n", time.Since(t0).Round(time.Millisecond))
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	cl := fixtures.Generate(size)
	t0 = time.Now()
	for _, rc := range cl.Classes {
		if _, err := cs.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	var created atomic.Int64
	err = parallel(ctx, *workers, len(cl.Namespaces)+len(cl.Nodes), func(i int) error {
		var err error
		if i < len(cl.Namespaces) {
			if cl.Namespaces[i].Name == "default" || cl.Namespaces[i].Name == "kube-system" {
				return nil
			}
			_, err = cs.CoreV1().Namespaces().Create(ctx, cl.Namespaces[i], metav1.CreateOptions{})
		} else {
			n := cl.Nodes[i-len(cl.Namespaces)]
			var got *corev1.Node
			got, err = cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
			if err == nil && len(got.Status.Images) != len(n.Status.Images) {
				// The API server dropped the status on create: write it as a kubelet does.
				got.Status = n.Status
				got, err = cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{})
			}
			if err == nil && len(got.Spec.Taints) != len(n.Spec.Taints) {
				// The TaintNodesByCondition admission plugin taints new Nodes not-ready; with
				// no node lifecycle controller here, lift it as it would for a Ready Node.
				got.Spec.Taints = n.Spec.Taints
				_, err = cs.CoreV1().Nodes().Update(ctx, got, metav1.UpdateOptions{})
			}
		}
		if err == nil {
			created.Add(1)
		}
		return err
	})
	if err != nil {
		return err
	}
	populate := time.Since(t0)
	sample, err := cs.CoreV1().Nodes().Get(ctx, cl.Nodes[len(cl.Nodes)-1].Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	nodeJSON, _ := json.Marshal(sample)
	fmt.Fprintf(os.Stderr, "cluster: created %d objects in %s; a Node is %d bytes of JSON with %d images\n",
		created.Load(), populate.Round(time.Millisecond), len(nodeJSON), len(sample.Status.Images))
	if len(sample.Status.Images) == 0 {
		return fmt.Errorf("nodes have no status.images: the benchmark would not be realistic")
	}

	// The API server is answering (it served every create): time runtimeguard from process
	// start to /readyz ok (policy compiled, informers synced, webhook serving).
	type startRow struct {
		variant      string
		ready        time.Duration
		rss, hwm     int64
		loaded       *load.Result
		mixes        []*load.Result
		afterLoadHWM int64
	}
	var mixNames []string
	if *mixes != "" {
		mixNames = strings.Split(*mixes, ",")
	}
	variants := []struct {
		name    string
		environ []string
	}{{"default", nil}}
	if *memlimit != "" {
		variants = append(variants, struct {
			name    string
			environ []string
		}{"GOMEMLIMIT=" + *memlimit, []string{"GOMEMLIMIT=" + *memlimit}})
	}
	var rows []startRow
	for i := 0; i < *starts; i++ {
		for _, v := range variants {
			srv, err := e.startRuntimeguard(ctx, "", cp.Kubeconfig, v.environ...)
			if err != nil {
				return err
			}
			st, err := proc.Read(srv.pid())
			if err != nil {
				srv.stop()
				return err
			}
			row := startRow{variant: v.name, ready: srv.readyAfter, rss: st.RSS, hwm: st.HWM}
			fmt.Fprintf(os.Stderr, "cluster: runtimeguard (%s) start %d ready after %s, RSS %s MiB, peak %s MiB\n", v.name, i+1,
				srv.readyAfter.Round(time.Millisecond), proc.MiB(st.RSS), proc.MiB(st.HWM))
			if i == 0 && *n > 0 {
				r, err := runVerified(ctx, load.Config{Label: "live cluster c=8 " + v.name, URL: srv.url, RootCAs: e.pool, ExpectClass: review.ExpectedClass,
					ServerPID: srv.pid(), Concurrency: 8, Requests: *n, Duration: 20 * time.Second, Warmup: 500})
				if err != nil {
					srv.stop()
					return err
				}
				row.loaded, row.afterLoadHWM = r, r.ServerHWM
				for _, m := range mixNames {
					vs, err := review.Mix(m, len(cl.Nodes))
					if err != nil {
						srv.stop()
						return err
					}
					r, err := runVerified(ctx, load.Config{Label: "live cluster c=8 " + v.name + " mix " + m, URL: srv.url, RootCAs: e.pool, Mix: vs,
						ServerPID: srv.pid(), Concurrency: 8, Requests: *n, Duration: 20 * time.Second, Warmup: 500})
					if err != nil {
						srv.stop()
						return err
					}
					r.Label = m
					row.mixes = append(row.mixes, r)
					row.afterLoadHWM = r.ServerHWM
				}
			}
			srv.stop()
			rows = append(rows, row)
		}
	}

	// Informer variants, each in its own process (A B C, then A B C again).
	self, err := os.Executable()
	if err != nil {
		return err
	}
	heaps := map[string][]heapReport{}
	for round := 0; round < 2; round++ {
		for _, v := range informerVariants {
			cmd := exec.CommandContext(ctx, self, "informer-heap", "--kubeconfig="+cp.Kubeconfig, "--variant="+v.name,
				"--memprofile="+filepath.Join(e.out, "informer-"+v.name+".heap"))
			cmd.Stderr = os.Stderr
			b, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("informer-heap %s: %w", v.name, err)
			}
			var h heapReport
			if err := json.Unmarshal(b, &h); err != nil {
				return fmt.Errorf("informer-heap %s: %w (%s)", v.name, err, b)
			}
			if h.Nodes != len(cl.Nodes) {
				return fmt.Errorf("informer-heap %s: the view reported synced holding %d of %d Nodes", v.name, h.Nodes, len(cl.Nodes))
			}
			fmt.Fprintf(os.Stderr, "cluster: informers %-22s synced in %s, heap in use %s MiB, peak RSS %s MiB\n",
				v.name, h.Sync.Round(time.Millisecond), proc.MiB(int64(h.HeapInuse)), proc.MiB(h.HWM))
			heaps[v.name] = append(heaps[v.name], h)
		}
	}

	fmt.Fprintf(out, "\n### Against a real kube-apiserver: %d realistic Nodes (%d KB of JSON each, %d status.images), %d Namespaces, %d RuntimeClasses\n\n",
		len(cl.Nodes), len(nodeJSON)/1000, len(sample.Status.Images), len(cl.Namespaces), len(cl.Classes))
	fmt.Fprintf(out, "Populating the API server (%d concurrent clients): %s.\n\n", *workers, populate.Round(time.Millisecond))
	fmt.Fprintln(out, "| `runtimeguard serve --kubeconfig` | environment | process start to /readyz ok | RSS when ready MiB | peak RSS when ready MiB | peak RSS after load MiB | load |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---:|---|")
	for i, r := range rows {
		l, after := "-", "-"
		if r.loaded != nil {
			l = fmt.Sprintf("%d admissions at c=8, %.0f/s, p99 %s ms, %.0f ms CPU per 1,000", r.loaded.Requests, r.loaded.Throughput, ms(r.loaded.P99), cpuPer1k(r.loaded))
			for _, m := range r.mixes {
				l += fmt.Sprintf("; then mix %s: %d at c=8, %.0f/s, p99 %s ms, %.0f ms CPU per 1,000, peak %s MiB", m.Label, m.Requests, m.Throughput, ms(m.P99), cpuPer1k(m), proc.MiB(m.ServerHWM))
			}
			after = proc.MiB(r.afterLoadHWM)
		}
		fmt.Fprintf(out, "| start %d | %s | %s | %s | %s | %s | %s |\n", i/len(variants)+1, r.variant, r.ready.Round(time.Millisecond), proc.MiB(r.rss), proc.MiB(r.hwm), after, l)
	}
	for _, v := range variants {
		var worstReady time.Duration
		var worstHWM int64
		starts := 0
		for _, r := range rows {
			if r.variant != v.name {
				continue
			}
			starts++
			worstReady = max(worstReady, r.ready)
			worstHWM = max(worstHWM, r.hwm, r.afterLoadHWM)
		}
		fmt.Fprintf(out, "\nTargets (%s): ready within 3 s: %s (%s, worst of %d starts); peak RSS <= 100 MiB: %s (%s MiB).\n", v.name,
			verdictText(worstReady <= 3*time.Second), worstReady.Round(time.Millisecond), starts, verdictText(worstHWM <= 100<<20), proc.MiB(worstHWM))
	}
	fmt.Fprintln(out, "\n#### Informer caches with and without the transforms (a process that only runs the view's informers; heap in use after sync and GC, median of 2)")
	fmt.Fprintln(out, "\n| cache options | synced in | heap in use MiB | live heap (HeapAlloc) MiB | peak RSS MiB |\n|---|---:|---:|---:|---:|")
	for _, v := range informerVariants {
		hs := heaps[v.name]
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", v.what,
			median(pick2(hs, func(h heapReport) time.Duration { return h.Sync })).Round(time.Millisecond),
			proc.MiB(median(pick2(hs, func(h heapReport) int64 { return int64(h.HeapInuse) }))),
			proc.MiB(median(pick2(hs, func(h heapReport) int64 { return int64(h.HeapAlloc) }))),
			proc.MiB(median(pick2(hs, func(h heapReport) int64 { return h.HWM }))))
	}
	return nil
}

func verdictText(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func pick2[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// runInformerHeap is `runner informer-heap`: run the view's informers with one cache variant
// until synced, then report the heap.
func runInformerHeap(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("informer-heap", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	variant := fs.String("variant", "product", "product, strip-managed-fields or plain")
	memprofile := fs.String("memprofile", "", "write a heap profile after sync")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return err
	}
	var opts cache.Options
	switch *variant {
	case "product":
		opts = cluster.CacheOptions()
	case "strip-managed-fields":
		opts = cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	case "plain":
	default:
		return fmt.Errorf("unknown variant %q", *variant)
	}
	opts.Scheme = clientgoscheme.Scheme
	start := time.Now()
	c, err := cache.New(cfg, opts)
	if err != nil {
		return err
	}
	view := cluster.NewView(cluster.Options{})
	if err := cluster.Watch(ctx, c, view); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = c.Start(ctx) }()
	deadline := time.Now().Add(2 * time.Minute)
	for !view.Synced() {
		if time.Now().After(deadline) {
			return fmt.Errorf("informers not synced after 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h := heapReport{Variant: *variant, Sync: time.Since(start), Nodes: view.Snapshot().Nodes}
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.HeapInuse, h.HeapAlloc = ms.HeapInuse, ms.HeapAlloc
	if st, err := proc.Read(os.Getpid()); err == nil {
		h.RSS, h.HWM = st.RSS, st.HWM
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			return err
		}
		f.Close()
	}
	runtime.KeepAlive(c) // the caches stay reachable until measured
	runtime.KeepAlive(view)
	return json.NewEncoder(out).Encode(h)
}

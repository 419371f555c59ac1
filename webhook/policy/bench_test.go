package policy

import (
	"context"
	"strconv"
	"testing"
)

// BenchmarkDecodePod decodes the fields policies read from a realistic ~7 KB Deployment pod.
func BenchmarkDecodePod(b *testing.B) {
	raw := realisticPod(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePod(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheKey projects a realistic Pod on what the default policy reads and builds its
// decision cache key: what every admission pays before the cache lookup.
func BenchmarkCacheKey(b *testing.B) {
	pod, err := DecodePod(realisticPod(b))
	if err != nil {
		b.Fatal(err)
	}
	e := defaultEngine(b)
	v := testView(b)
	req := request(b, v, "tenant-a", pod)
	reads := e.current.Load().reads
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		in := reads.project(context.Background(), req)
		buf = cacheKey(buf[:0], req, &in)
	}
}

// BenchmarkBuildInput builds the Rego input of a realistic Pod: what a cache miss pays before
// the evaluation.
func BenchmarkBuildInput(b *testing.B) {
	pod, err := DecodePod(realisticPod(b))
	if err != nil {
		b.Fatal(err)
	}
	e := defaultEngine(b)
	v := testView(b)
	req := request(b, v, "tenant-a", pod)
	in := e.current.Load().reads.project(context.Background(), req)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.input(e.current.Load(), req, &in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideCached is the common case: replicas of one template share a decision.
func BenchmarkDecideCached(b *testing.B) {
	e := defaultEngine(b)
	v := testView(b)
	pod, err := DecodePod(realisticPod(b))
	if err != nil {
		b.Fatal(err)
	}
	req := request(b, v, "tenant-a", pod)
	ctx := context.Background()
	if _, _, err := e.Decide(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, cached, err := e.Decide(ctx, req)
		if err != nil || !cached {
			b.Fatalf("cached=%v err=%v", cached, err)
		}
	}
}

// BenchmarkDecideUncached evaluates the default policy for every request: each iteration's pod
// has a different first container name (container names are in the policy input; labels the
// policy does not read are not), so the cache never answers.
func BenchmarkDecideUncached(b *testing.B) {
	e := defaultEngine(b)
	v := testView(b)
	pod, err := DecodePod(realisticPod(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ns := namespace(b, v, "tenant-a")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		p := *pod
		p.Spec.Containers = append([]Container(nil), pod.Spec.Containers...)
		p.Spec.Containers[0].Name = "checkout-" + strconv.Itoa(i)
		d, cached, err := e.Decide(ctx, Request{Operation: "CREATE", Namespace: ns, Pod: &p, Cluster: v.Snapshot()})
		if err != nil || cached || d.Class != "gvisor" {
			b.Fatalf("class=%q cached=%v err=%v", d.Class, cached, err)
		}
	}
}

package policy

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

func BenchmarkZZQ(b *testing.B) {
	e := defaultEngine(b)
	v := testView(b)
	pod, err := DecodePod(realisticPod(b))
	if err != nil {
		b.Fatal(err)
	}
	ns := namespace(b, v, "tenant-a")
	prog := e.current.Load()
	req := Request{Operation: "CREATE", Namespace: ns, Pod: pod, Cluster: v.Snapshot()}
	in := prog.reads.project(context.Background(), req)
	input, err := e.input(req, &in)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range strings.Split(os.Getenv("Q"), ";;") {
		pq, err := prepare(context.Background(), prog.set, q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pq.Eval(context.Background(), rego.EvalParsedInput(input), rego.EvalVirtualCache(newSeededCache(prog.constants))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

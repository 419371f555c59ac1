// Command genfixtures writes a generated benchmark cluster (e2e/bench/internal/fixtures) as a
// `runtimeguard serve --cluster` fixture file and as the data document of the
// `opa run --server` comparison.
//
//	genfixtures --nodes 5000 --classes 50 --namespaces 10000 --cluster c.yaml --opa-data d.json
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/fixtures"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genfixtures:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("genfixtures", flag.ContinueOnError)
	var s fixtures.Size
	var clusterOut, opaOut string
	fs.IntVar(&s.Nodes, "nodes", 10, "nodes")
	fs.IntVar(&s.Classes, "classes", 10, "runtime classes (at least the 5 the default policy ranks)")
	fs.IntVar(&s.Namespaces, "namespaces", 100, "namespaces (bench-untrusted, default and kube-system included)")
	fs.BoolVar(&s.Realistic, "realistic", false, "nodes with status.images, capacity, nodeInfo... as kubelets write them")
	fs.StringVar(&clusterOut, "cluster", "", "fixture file to write (YAML)")
	fs.StringVar(&opaOut, "opa-data", "", "OPA data document to write (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if clusterOut == "" && opaOut == "" {
		return fmt.Errorf("nothing to do: give --cluster and/or --opa-data")
	}
	c := fixtures.Generate(s)
	if clusterOut != "" {
		f, err := os.Create(clusterOut)
		if err != nil {
			return err
		}
		if err := c.WriteYAML(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if opaOut != "" {
		b, err := c.OPAData()
		if err != nil {
			return err
		}
		if err := os.WriteFile(opaOut, b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("genfixtures: %s\n", s)
	return nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// suiteSuffix names the files `runtimeguard test` runs.
const suiteSuffix = ".suite.yaml"

func newTestCommand() *cobra.Command {
	var run string
	cmd := &cobra.Command{
		Use:   "test [--run REGEXP] [DIR|FILE]...",
		Short: "Run declarative policy test suites (*.suite.yaml)",
		Long: `test runs every *.suite.yaml found under the directories (default "."; hidden and testdata
directories below them are skipped). Each case goes through the mutating and the validating
webhook exactly as eval does, and its outcome is checked against what the case expects.

A suite file:

  policies: [DIR, ...]      # policy directories, relative to the suite file; merged like repeated
                            # serve --policies (default: the embedded default policy)
  defaultPolicy: true       # also load the embedded default policy under the directories
                            # (for a directory that only adds to it, like policies/examples/*)
  cluster: [FILE, ...]      # fixture files as eval --cluster takes them, relative to the suite file
  enforcement: enforce      # default enforcement of the cases: enforce or warn
  cases:
    - name: untrusted pods get gvisor       # unique in the suite
      pod: {metadata: ..., spec: ...}        # inline Pod (apiVersion and kind may be left out),
      podFile: pods/one.yaml                 #   or a file holding exactly one Pod
      namespaceLabels: {KEY: VALUE}          # add to / override the labels of the pod's Namespace
      namespaceAnnotations: {KEY: VALUE}     #   and its annotations (the Namespace is created when
                                             #   the fixtures lack it)
      enforcement: warn                      # this case's enforcement
      expect:                                # assert only what is given (at least one)
        allowed: true
        runtimeClassName: gvisor             # "" for none
        mutated: true
        messageContains: "..."               # the denial message
        warningsContain: ["...", ...]        # each is a substring of some warning
        noWarnings: true                     # there is no warning (false: there is one at least)
        reasonsContain: ["...", ...]         # each is a substring of some reason

Unknown keys and values of the wrong type are errors; inline pods are decoded strictly too.
Output: PASS/FAIL <suite file>: <case name> per case, then "N passed, N failed".
Exit code: 0 all passed, 1 any case failed, 2 a suite is broken (file:line says where) or none found.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var filter *regexp.Regexp
			if run != "" {
				var err error
				if filter, err = regexp.Compile(run); err != nil {
					return fmt.Errorf("--run: %w", err)
				}
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			files, err := findSuites(args)
			if err != nil {
				return err
			}
			r := runSuites(cmd.Context(), cmd.OutOrStdout(), files, filter)
			switch {
			case r.broken > 0:
				return exitCode(2)
			case r.failed > 0:
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&run, "run", "", "run only the cases whose name matches this regular expression")
	return cmd
}

// findSuites returns the suite files under paths, in lexical order per path. A file given
// explicitly is taken whatever its name.
func findSuites(paths []string) ([]string, error) {
	var out []string
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, root)
			continue
		}
		before := len(out)
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), suiteSuffix) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(out) == before {
			return nil, fmt.Errorf("no *%s files under %s", suiteSuffix, root)
		}
	}
	return out, nil
}

// suite is one parsed suite file.
type suite struct {
	path          string
	policies      []located
	defaultPolicy bool
	cluster       []located
	enforcement   string
	cases         []*testCase
	line          int // of the first key, for errors about the whole suite
}

// located is a value with the line it was written on.
type located struct {
	value string
	line  int
}

type testCase struct {
	name                 string
	line                 int
	pod                  manifest.Object
	namespaceLabels      map[string]string
	namespaceAnnotations map[string]string
	enforcement          string
	expect               expectation
}

// expectation holds what a case asserts; nil and empty mean "not asserted".
type expectation struct {
	allowed          *bool
	runtimeClassName *string
	mutated          *bool
	messageContains  *string
	warningsContain  []string
	reasonsContain   []string
	noWarnings       *bool
}

// suiteError is a problem with a suite file, at a line.
type suiteError struct {
	file string
	line int
	msg  string
}

func (e *suiteError) Error() string {
	if e.line <= 0 {
		return fmt.Sprintf("%s: %s", e.file, e.msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.file, e.line, e.msg)
}

// parser turns a suite file's YAML nodes into a suite, reporting file:line.
type parser struct {
	path string
	dir  string
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &suiteError{file: p.path, line: line, msg: fmt.Sprintf(format, args...)}
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?`)

// parseSuite reads and checks a suite file: everything that can be known without evaluating.
func parseSuite(path string) (*suite, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &suiteError{file: path, msg: err.Error()}
	}
	p := &parser{path: path, dir: filepath.Dir(path)}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &suiteError{file: path, line: 1, msg: "the suite is empty"}
		}
		return nil, p.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		return nil, p.errf(at, "a suite file holds one YAML document")
	} else if !errors.Is(err, io.EOF) {
		return nil, p.yamlError(err)
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "a suite is a mapping with cases (and policies, cluster, enforcement), not %s", kindName(root))
	}
	s := &suite{path: path, line: root.Line}
	seen := map[string]bool{}
	err = p.mapping(root, "the suite", []string{"policies", "defaultPolicy", "cluster", "enforcement", "cases"}, func(key string, k, v *yaml.Node) error {
		switch key {
		case "policies":
			s.policies, err = p.paths(v, "policies", true)
		case "defaultPolicy":
			var b bool
			b, err = p.boolean(v, key)
			s.defaultPolicy = b
		case "cluster":
			s.cluster, err = p.paths(v, "cluster", false)
		case "enforcement":
			s.enforcement, err = p.enforcement(v)
		case "cases":
			s.cases, err = p.cases(v, seen)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(s.cases) == 0 {
		return nil, p.errf(root, "the suite has no cases")
	}
	return s, nil
}

// yamlError turns a YAML syntax or type error into file:line.
func (p *parser) yamlError(err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return &suiteError{file: p.path, line: line, msg: "not valid YAML: " + msg}
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "empty"
}

// mapping calls each for every key of n, refusing unknown and repeated keys.
func (p *parser) mapping(n *yaml.Node, what string, known []string, each func(key string, k, v *yaml.Node) error) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "%s must be a mapping, not %s", what, kindName(n))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Tag == "!!merge" {
			return p.errf(k, "merge keys (<<) are not supported in %s", what)
		}
		key := k.Value
		if !contains(known, key) {
			return p.errf(k, "unknown key %q in %s (want %s)", key, what, strings.Join(known, ", "))
		}
		if seen[key] {
			return p.errf(k, "key %q appears twice in %s", key, what)
		}
		seen[key] = true
		if err := each(key, k, v); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", p.errf(n, "%s must be a string, not %s", what, kindName(n))
	}
	return n.Value, nil
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, p.errf(n, "%s must be true or false, not %s", what, kindName(n))
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, p.errf(n, "%s: %v", what, err)
	}
	return b, nil
}

func (p *parser) strList(n *yaml.Node, what string) ([]located, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "%s must be a list of strings, not %s", what, kindName(n))
	}
	out := make([]located, 0, len(n.Content))
	for _, item := range n.Content {
		item = resolve(item)
		s, err := p.str(item, what+" entries")
		if err != nil {
			return nil, err
		}
		out = append(out, located{value: s, line: item.Line})
	}
	return out, nil
}

// paths reads a list of paths relative to the suite file and checks they exist.
func (p *parser) paths(n *yaml.Node, what string, dirs bool) ([]located, error) {
	list, err := p.strList(n, what)
	if err != nil {
		return nil, err
	}
	for i, l := range list {
		path := l.value
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.dir, path)
		}
		info, err := os.Stat(path)
		if err != nil {
			return nil, &suiteError{file: p.path, line: l.line, msg: fmt.Sprintf("%s: %s does not exist (paths are relative to the suite file)", what, path)}
		}
		if dirs && !info.IsDir() {
			return nil, &suiteError{file: p.path, line: l.line, msg: fmt.Sprintf("%s: %s is not a directory", what, path)}
		}
		if !dirs && info.IsDir() {
			return nil, &suiteError{file: p.path, line: l.line, msg: fmt.Sprintf("%s: %s is a directory, want a file", what, path)}
		}
		list[i].value = path
	}
	return list, nil
}

func (p *parser) stringMap(n *yaml.Node, what string) (map[string]string, error) {
	out := map[string]string{}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "%s must be a mapping of strings, not %s", what, kindName(n))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return nil, p.errf(v, "%s[%s] must be a string, not %s", what, k.Value, kindName(v))
		}
		if _, dup := out[k.Value]; dup {
			return nil, p.errf(k, "key %q appears twice in %s", k.Value, what)
		}
		out[k.Value] = v.Value // true and 1 are taken as the strings "true" and "1"
	}
	return out, nil
}

func (p *parser) enforcement(n *yaml.Node) (string, error) {
	s, err := p.str(n, "enforcement")
	if err != nil {
		return "", err
	}
	if webhook.Enforcement(s) != webhook.Enforce && webhook.Enforcement(s) != webhook.Warn {
		return "", p.errf(n, "enforcement %q: want enforce or warn", s)
	}
	return s, nil
}

var caseKeys = []string{"name", "pod", "podFile", "namespaceLabels", "namespaceAnnotations", "enforcement", "expect"}

func (p *parser) cases(n *yaml.Node, seen map[string]bool) ([]*testCase, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "cases must be a list, not %s", kindName(n))
	}
	var out []*testCase
	for i, item := range n.Content {
		item = resolve(item)
		c := &testCase{line: item.Line}
		what := fmt.Sprintf("case %d", i+1)
		var podNode, expectNode *yaml.Node
		var podFile located
		err := p.mapping(item, what, caseKeys, func(key string, _, v *yaml.Node) error {
			var err error
			switch key {
			case "name":
				if c.name, err = p.str(v, "name"); err == nil && strings.TrimSpace(c.name) == "" {
					err = p.errf(v, "name must not be empty")
				}
			case "pod":
				podNode = v
			case "podFile":
				var s string
				s, err = p.str(v, "podFile")
				podFile = located{value: s, line: v.Line}
			case "namespaceLabels":
				c.namespaceLabels, err = p.stringMap(v, "namespaceLabels")
			case "namespaceAnnotations":
				c.namespaceAnnotations, err = p.stringMap(v, "namespaceAnnotations")
			case "enforcement":
				c.enforcement, err = p.enforcement(v)
			case "expect":
				expectNode = v
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		switch {
		case c.name == "":
			return nil, p.errf(item, "%s has no name", what)
		case seen[c.name]:
			return nil, p.errf(item, "case name %q is used twice", c.name)
		case podNode == nil && podFile.value == "":
			return nil, p.errf(item, "case %q has no pod: give pod (inline) or podFile", c.name)
		case podNode != nil && podFile.value != "":
			return nil, p.errf(item, "case %q has both pod and podFile: give one", c.name)
		case expectNode == nil:
			return nil, p.errf(item, "case %q has no expect: say what the outcome must be", c.name)
		}
		seen[c.name] = true
		if podNode != nil {
			c.pod, err = p.inlinePod(podNode)
		} else {
			c.pod, err = p.podFile(podFile)
		}
		if err != nil {
			return nil, err
		}
		if c.expect, err = p.expectation(expectNode); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

var expectKeys = []string{"allowed", "runtimeClassName", "mutated", "messageContains", "warningsContain", "noWarnings", "reasonsContain"}

func (p *parser) expectation(n *yaml.Node) (expectation, error) {
	var e expectation
	given := 0
	err := p.mapping(n, "expect", expectKeys, func(key string, _, v *yaml.Node) error {
		given++
		switch key {
		case "allowed", "mutated", "noWarnings":
			b, err := p.boolean(v, "expect."+key)
			switch key {
			case "allowed":
				e.allowed = &b
			case "mutated":
				e.mutated = &b
			default:
				e.noWarnings = &b
			}
			return err
		case "runtimeClassName", "messageContains":
			s, err := p.str(v, "expect."+key)
			if key == "runtimeClassName" {
				e.runtimeClassName = &s
			} else {
				e.messageContains = &s
			}
			return err
		case "warningsContain", "reasonsContain":
			list, err := p.strList(v, "expect."+key)
			for _, l := range list {
				if key == "warningsContain" {
					e.warningsContain = append(e.warningsContain, l.value)
				} else {
					e.reasonsContain = append(e.reasonsContain, l.value)
				}
			}
			return err
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	if given == 0 {
		return e, p.errf(n, "expect is empty: give at least one of %s", strings.Join(expectKeys, ", "))
	}
	return e, nil
}

// inlinePod turns a pod: mapping into the Pod eval would read from a file. apiVersion and kind
// default to v1 Pod; fields are checked strictly (a misspelt field would silently test
// something else), and an unknown field is reported at its own line.
func (p *parser) inlinePod(n *yaml.Node) (manifest.Object, error) {
	if n.Kind != yaml.MappingNode {
		return manifest.Object{}, p.errf(n, "pod must be a mapping (a Pod object), not %s", kindName(n))
	}
	var obj map[string]any
	if err := n.Decode(&obj); err != nil {
		return manifest.Object{}, p.yamlError(err)
	}
	if _, ok := obj["apiVersion"]; !ok {
		obj["apiVersion"] = "v1"
	}
	if _, ok := obj["kind"]; !ok {
		obj["kind"] = "Pod"
	}
	if obj["kind"] != "Pod" || obj["apiVersion"] != "v1" {
		return manifest.Object{}, p.errf(n, "pod must be a v1 Pod, not %v %v", obj["apiVersion"], obj["kind"])
	}
	js, err := json.Marshal(obj)
	if err != nil {
		return manifest.Object{}, p.errf(n, "pod: %v", err)
	}
	strict, err := sigsjson.UnmarshalStrict(js, &corev1.Pod{})
	if err != nil {
		return manifest.Object{}, p.errf(n, "pod: %v", err)
	}
	if len(strict) > 0 {
		at := n
		var fe sigsjson.FieldError
		if errors.As(strict[0], &fe) {
			if k := findKey(n, fe.FieldPath()); k != nil {
				at = k
			}
		}
		return manifest.Object{}, p.errf(at, "pod: %v", strict[0])
	}
	source := fmt.Sprintf("%s:%d", p.path, n.Line)
	objs, err := manifest.Read(bytes.NewReader(js), source)
	if err != nil {
		return manifest.Object{}, p.errf(n, "pod: %s", strings.TrimPrefix(err.Error(), source+"#1: "))
	}
	objs[0].Source = source
	return objs[0], nil
}

var pathPart = regexp.MustCompile(`([^.\[\]]+)|\[(\d+)\]`)

// findKey finds the key node of a field path like spec.containers[0].image under n.
func findKey(n *yaml.Node, path string) *yaml.Node {
	var key *yaml.Node
	for _, m := range pathPart.FindAllStringSubmatch(path, -1) {
		n = resolve(n)
		if n == nil {
			return key
		}
		if m[2] != "" {
			i, _ := strconv.Atoi(m[2])
			if n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return key
			}
			n = n.Content[i]
			continue
		}
		if n.Kind != yaml.MappingNode {
			return key
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == m[1] {
				key, next = n.Content[i], n.Content[i+1]
				break
			}
		}
		if next == nil {
			return key
		}
		n = next
	}
	return key
}

func (p *parser) podFile(l located) (manifest.Object, error) {
	path := l.value
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.dir, path)
	}
	objs, err := manifest.ReadFile(path)
	if err != nil {
		return manifest.Object{}, &suiteError{file: p.path, line: l.line, msg: "podFile: " + err.Error()}
	}
	if len(objs) != 1 {
		return manifest.Object{}, &suiteError{file: p.path, line: l.line, msg: fmt.Sprintf("podFile: %s holds %d objects, want exactly one Pod", path, len(objs))}
	}
	if _, ok := objs[0].Object.(*corev1.Pod); !ok {
		return manifest.Object{}, &suiteError{file: p.path, line: l.line, msg: fmt.Sprintf("podFile: %s: want a Pod, got %s", objs[0].Source, objs[0].Object.GetObjectKind().GroupVersionKind().Kind)}
	}
	return objs[0], nil
}

// loadSuitePolicies loads what a suite's policies and defaultPolicy say.
func loadSuitePolicies(s *suite) (*policy.Set, error) {
	if len(s.policies) == 0 {
		return webhook.LoadPolicies(nil)
	}
	dirs := make([]string, len(s.policies))
	for i, l := range s.policies {
		dirs[i] = l.value
	}
	set, err := policy.LoadDirs(dirs...)
	if err != nil || !s.defaultPolicy {
		return set, err
	}
	base, err := policy.LoadFS(policies.FS)
	if err != nil {
		return nil, err
	}
	return mergeSets(base, set)
}

// mergeSets adds over's modules and data to base's, as loading both from one set of directories
// would: a module name or data path defined by both is an error.
func mergeSets(base, over *policy.Set) (*policy.Set, error) {
	out := &policy.Set{Modules: map[string]*ast.Module{}, Files: append(append([]string(nil), base.Files...), over.Files...)}
	for _, s := range []*policy.Set{base, over} {
		for name, m := range s.Modules {
			if _, dup := out.Modules[name]; dup {
				return nil, fmt.Errorf("module %s is loaded twice", name)
			}
			out.Modules[name] = m
		}
	}
	data, err := mergeData(base.Data, over.Data, "data")
	if err != nil {
		return nil, err
	}
	out.Data = data
	sort.Strings(out.Files)
	return out, nil
}

func mergeData(a, b map[string]any, path string) (map[string]any, error) {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		old, ok := out[k]
		if !ok {
			out[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s.%s is defined by the default policy and by the suite's policies", path, k)
		}
		merged, err := mergeData(om, nm, path+"."+k)
		if err != nil {
			return nil, err
		}
		out[k] = merged
	}
	return out, nil
}

type testResults struct {
	passed, failed, broken int
}

// runSuites runs every suite file and prints a line per case and a summary.
func runSuites(ctx context.Context, w io.Writer, files []string, filter *regexp.Regexp) testResults {
	var r testResults
	for _, f := range files {
		if err := runSuite(ctx, w, f, filter, &r); err != nil {
			r.broken++
			fmt.Fprintf(w, "ERROR %v\n", err)
		}
	}
	summary := fmt.Sprintf("%d passed, %d failed", r.passed, r.failed)
	if r.broken > 0 {
		summary += fmt.Sprintf(", %d %s broken", r.broken, plural(r.broken, "suite", "suites"))
	}
	fmt.Fprintln(w, summary)
	return r
}

func runSuite(ctx context.Context, w io.Writer, path string, filter *regexp.Regexp, r *testResults) error {
	s, err := parseSuite(path)
	if err != nil {
		return err
	}
	policiesLine := s.line
	if len(s.policies) > 0 {
		policiesLine = s.policies[0].line
	}
	set, err := loadSuitePolicies(s)
	if err != nil {
		return &suiteError{file: path, line: policiesLine, msg: "policies: " + err.Error()}
	}
	view := cluster.NewView(cluster.Options{})
	for _, l := range s.cluster {
		objs, err := manifest.ReadFile(l.value)
		if err == nil {
			err = view.Load(objs)
		}
		if err != nil {
			return &suiteError{file: path, line: l.line, msg: "cluster: " + err.Error()}
		}
	}
	view.MarkSynced()
	flags := offlineFlags{enforcement: string(webhook.Enforce)}
	if s.enforcement != "" {
		flags.enforcement = s.enforcement
	}
	o, err := flags.build(ctx, view, set)
	if err != nil {
		return &suiteError{file: path, line: policiesLine, msg: "policies: " + err.Error()}
	}
	for _, c := range s.cases {
		if filter != nil && !filter.MatchString(c.name) {
			continue
		}
		out, err := runCase(ctx, o, flags.enforcement, c)
		if err != nil {
			return &suiteError{file: path, line: c.line, msg: fmt.Sprintf("case %q: %v", c.name, err)}
		}
		problems := c.expect.check(out)
		if len(problems) == 0 {
			r.passed++
			fmt.Fprintf(w, "PASS %s: %s\n", path, c.name)
			continue
		}
		r.failed++
		fmt.Fprintf(w, "FAIL %s: %s\n", path, c.name)
		fmt.Fprintf(w, "    at %s:%d\n", path, c.line)
		for _, p := range problems {
			fmt.Fprintf(w, "    %s\n", p)
		}
		writeOutcome(w, out)
	}
	return nil
}

// runCase simulates one case's Pod; namespace labels and annotations are set for the case and
// restored afterwards (cases run one at a time against the suite's view).
func runCase(ctx context.Context, o *offline, suiteEnforcement string, c *testCase) (webhook.Outcome, error) {
	enforcement := suiteEnforcement
	if c.enforcement != "" {
		enforcement = c.enforcement
	}
	if len(c.namespaceLabels) > 0 || len(c.namespaceAnnotations) > 0 {
		name, _ := podIdentity(c.pod)
		original, found, err := o.view.Namespace(ctx, name)
		if err != nil {
			return webhook.Outcome{}, err
		}
		clone := cluster.Namespace{Name: name, Labels: map[string]string{}, Annotations: map[string]string{}}
		for k, v := range original.Labels {
			clone.Labels[k] = v
		}
		for k, v := range original.Annotations {
			clone.Annotations[k] = v
		}
		for k, v := range c.namespaceLabels {
			clone.Labels[k] = v
		}
		for k, v := range c.namespaceAnnotations {
			clone.Annotations[k] = v
		}
		o.view.UpsertNamespace(clone)
		defer func() {
			if found {
				o.view.UpsertNamespace(*original)
			} else {
				o.view.DeleteNamespace(name)
			}
		}()
	}
	admitter := webhook.NewAdmitter(webhook.Config{Engine: o.engine, View: o.view, Enforcement: webhook.Enforcement(enforcement)})
	return simulate(ctx, admitter, c.pod)
}

// check returns one line per unmet expectation.
func (e *expectation) check(o webhook.Outcome) []string {
	var out []string
	if e.allowed != nil && *e.allowed != o.Allowed {
		out = append(out, fmt.Sprintf("allowed: expected %v, got %v", *e.allowed, o.Allowed))
	}
	if e.runtimeClassName != nil && *e.runtimeClassName != o.RuntimeClassName {
		out = append(out, fmt.Sprintf("runtimeClassName: expected %q, got %q", *e.runtimeClassName, o.RuntimeClassName))
	}
	if e.mutated != nil && *e.mutated != o.Mutated {
		out = append(out, fmt.Sprintf("mutated: expected %v, got %v", *e.mutated, o.Mutated))
	}
	if e.messageContains != nil && !strings.Contains(o.Message, *e.messageContains) {
		out = append(out, fmt.Sprintf("message: expected to contain %q, got %q", *e.messageContains, o.Message))
	}
	for _, want := range e.warningsContain {
		if !anyContains(o.Warnings, want) {
			out = append(out, fmt.Sprintf("warnings: expected one containing %q, got %s", want, quoteList(o.Warnings)))
		}
	}
	if e.noWarnings != nil && *e.noWarnings != (len(o.Warnings) == 0) {
		if *e.noWarnings {
			out = append(out, fmt.Sprintf("warnings: expected none, got %s", quoteList(o.Warnings)))
		} else {
			out = append(out, "warnings: expected at least one, got none")
		}
	}
	for _, want := range e.reasonsContain {
		if !anyContains(o.Reasons, want) {
			out = append(out, fmt.Sprintf("reasons: expected one containing %q, got %s", want, quoteList(o.Reasons)))
		}
	}
	return out
}

func anyContains(list []string, want string) bool {
	for _, s := range list {
		if strings.Contains(s, want) {
			return true
		}
	}
	return false
}

func quoteList(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeOutcome prints what the decision was, for a failed case.
func writeOutcome(w io.Writer, o webhook.Outcome) {
	fmt.Fprintf(w, "    got: allowed=%v runtimeClassName=%q mutated=%v\n", o.Allowed, o.RuntimeClassName, o.Mutated)
	if o.Message != "" {
		fmt.Fprintf(w, "    message: %s\n", o.Message)
	}
	for _, r := range o.Reasons {
		fmt.Fprintf(w, "    reason: %s\n", r)
	}
	for _, wn := range o.Warnings {
		fmt.Fprintf(w, "    warning: %s\n", wn)
	}
}

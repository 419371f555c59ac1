package suite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	sigsjson "sigs.k8s.io/json"

	"go.yaml.in/yaml/v3"

	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
)

// suite is one parsed suite file.
type suite struct {
	path          string
	policies      []located
	defaultPolicy bool
	policyModules []located
	policyData    []located
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
	err = p.mapping(root, "the suite", []string{"policies", "defaultPolicy", "policyModules", "policyData", "cluster", "enforcement", "cases"}, func(key string, k, v *yaml.Node) error {
		switch key {
		case "policies":
			s.policies, err = p.paths(v, "policies", dirsOnly)
		case "policyModules":
			s.policyModules, err = p.paths(v, "policyModules", dirsOnly)
		case "policyData":
			s.policyData, err = p.paths(v, "policyData", filesOrDirs)
		case "defaultPolicy":
			var b bool
			b, err = p.boolean(v, key)
			s.defaultPolicy = b
		case "cluster":
			s.cluster, err = p.paths(v, "cluster", filesOnly)
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

// pathKind says what a list of paths may hold.
type pathKind int

const (
	filesOnly pathKind = iota
	dirsOnly
	filesOrDirs
)

// paths reads a list of paths relative to the suite file and checks they exist and are of
// the kind wanted.
func (p *parser) paths(n *yaml.Node, what string, kind pathKind) ([]located, error) {
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
		if kind == dirsOnly && !info.IsDir() {
			return nil, &suiteError{file: p.path, line: l.line, msg: fmt.Sprintf("%s: %s is not a directory", what, path)}
		}
		if kind == filesOnly && info.IsDir() {
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

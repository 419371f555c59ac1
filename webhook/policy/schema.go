package policy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
	"go.yaml.in/yaml/v3"
)

// CheckData checks the set's data against a JSON schema (OPA's json.match_schema, so the
// schema dialect is the one OPA documents). Each problem names the data path and, when a layer
// file set the value, file:line.
func (s *Set) CheckData(ctx context.Context, schema []byte) error {
	var schemaDoc any
	if err := util.UnmarshalJSON(schema, &schemaDoc); err != nil {
		return fmt.Errorf("the data schema is not JSON: %w", err)
	}
	data := s.Data
	if data == nil {
		data = map[string]any{}
	}
	rs, err := rego.New(
		rego.Query("result := json.match_schema(input.data, input.schema)"),
		rego.Input(map[string]any{"data": data, "schema": schemaDoc}),
		rego.SetRegoVersion(ast.RegoV1),
	).Eval(ctx)
	if err != nil {
		return fmt.Errorf("checking the policy data against its schema: %w", err)
	}
	if len(rs) != 1 {
		return fmt.Errorf("checking the policy data against its schema: %d results", len(rs))
	}
	result, _ := rs[0].Bindings["result"].([]any)
	if len(result) != 2 {
		return fmt.Errorf("checking the policy data against its schema: unexpected result %v", rs[0].Bindings["result"])
	}
	if ok, _ := result[0].(bool); ok {
		return nil
	}
	problems, _ := result[1].([]any)
	lines := make([]string, 0, len(problems))
	for _, p := range problems {
		m, _ := p.(map[string]any)
		field, _ := m["field"].(string)
		desc, _ := m["desc"].(string)
		lines = append(lines, s.locate(field)+desc)
	}
	return fmt.Errorf("the policy data does not match the schema of the built-in policy (policies/data.schema.json):\n  %s", strings.Join(lines, "\n  "))
}

// locate turns a schema error's field ("config.classes.0.isolation", "(root)") into
// "FILE:LINE: data.config.classes[0].isolation: " when a layer file set it, else the path.
func (s *Set) locate(field string) string {
	if field == "" || field == "(root)" {
		return "data: "
	}
	segs := strings.Split(field, ".")
	var b strings.Builder
	b.WriteString("data")
	for _, seg := range segs {
		if _, err := strconv.Atoi(seg); err == nil {
			b.WriteString("[" + seg + "]")
		} else {
			b.WriteString("." + seg)
		}
	}
	where := b.String() + ": "
	file := s.blame(segs)
	if file == "" {
		return where
	}
	if line := yamlLine(file, segs); line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, line, where)
	}
	return file + ": " + where
}

// yamlLine finds the line of the deepest node along path in a YAML (or JSON) file; 0 when it
// cannot tell.
func yamlLine(file string, path []string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil || len(doc.Content) == 0 {
		return 0
	}
	n := doc.Content[0]
	line := n.Line
	for _, seg := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

package render

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Format is what -o/--output selects. "text" is accepted as table, the name eval and explain
// used first, so existing scripts keep working.
type Format string

// The formats every command with output offers.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

var _ pflag.Value = (*Format)(nil)

func (f *Format) String() string { return string(*f) }

// Set validates at parse time, so a bad -o fails before any work, with the usage hint of
// every flag error.
func (f *Format) Set(s string) error {
	switch Format(s) {
	case FormatTable, "text":
		*f = FormatTable
	case FormatJSON, FormatYAML:
		*f = Format(s)
	default:
		return fmt.Errorf("want table, json or yaml")
	}
	return nil
}

// Type names the value in --help.
func (f *Format) Type() string { return "table|json|yaml" }

// AddFormatFlag registers -o/--output with the table default; jsonIs says what json prints.
func AddFormatFlag(fs *pflag.FlagSet, f *Format, jsonIs string) {
	*f = FormatTable
	fs.VarP(f, "output", "o", "output format: table, json ("+jsonIs+") or yaml")
}

// YAMLDoc writes v as one YAML document. It goes through JSON, so the keys and omissions are the
// JSON output's (sorted, like kubectl -o yaml).
func YAMLDoc(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	y, err := yaml.JSONToYAML(b)
	if err != nil {
		return err
	}
	_, err = w.Write(y)
	return err
}

// YAMLDocs writes one YAML document per value, each starting with "---".
func YAMLDocs[T any](w io.Writer, values []T) error {
	for _, v := range values {
		if _, err := io.WriteString(w, "---\n"); err != nil {
			return err
		}
		if err := YAMLDoc(w, v); err != nil {
			return err
		}
	}
	return nil
}

// Print writes v as an indented JSON object or a YAML document, or calls table.
func Print(w io.Writer, f Format, v any, table func() error) error {
	switch f {
	case FormatJSON:
		return JSON(w, v)
	case FormatYAML:
		return YAMLDoc(w, v)
	}
	return table()
}

// PrintEach is Print for a list of values: JSON lines (one object per line, for jq and line
// tools) or a stream of YAML documents.
func PrintEach[T any](w io.Writer, f Format, values []T, table func() error) error {
	switch f {
	case FormatJSON:
		return JSONLines(w, values)
	case FormatYAML:
		return YAMLDocs(w, values)
	}
	return table()
}

package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// DecodeOptions are how runtimeguard reads JSON from the API server: go-json-experiment (the
// basis of Go's encoding/json/v2), which validates while it decodes, so a review is read in one
// pass and what no policy reads is skipped without being built (docs/benchmarks.md measured
// encoding/json at 2.4x its cost on a realistic Pod). Duplicate names keep their last value and
// invalid UTF-8 becomes U+FFFD, as the API server's own decoder does; jsontext stops nesting at
// 10,000 levels, as encoding/json does.
var DecodeOptions = json.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

// DecodePod decodes the fields policies read from a Pod's JSON.
func DecodePod(raw []byte) (*Pod, error) {
	p := &Pod{}
	if err := json.Unmarshal(raw, p, DecodeOptions); err != nil {
		return nil, errors.New(DecodeErrorText(err))
	}
	return p, nil
}

// DecodePodFrom decodes the Pod that is the decoder's next value (an AdmissionReview's
// request.object), leaving the decoder after it; the decoder must have DecodeOptions; errors are as json.UnmarshalDecode returns them
// (DecodeErrorText describes them).
func DecodePodFrom(dec *jsontext.Decoder) (*Pod, error) {
	p := &Pod{}
	if err := json.UnmarshalDecode(dec, p); err != nil { // the decoder carries DecodeOptions
		return nil, err
	}
	return p, nil
}

// DecodeErrorText describes a decoding error by position, field and type only: the decoders'
// own messages can quote the offending value, and values must not reach responses or logs.
func DecodeErrorText(err error) string {
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	var wrong *WrongTypeError
	switch {
	case errors.As(err, &wrong):
		return wrong.Error()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON is truncated"
	case errors.As(err, &syntax):
		if strings.Contains(syntax.Error(), "exceeded max depth") {
			return fmt.Sprintf("invalid JSON at byte %d: exceeded max depth", syntax.ByteOffset)
		}
		return fmt.Sprintf("invalid JSON at byte %d: %s", syntax.ByteOffset, syntaxReason(syntax))
	case errors.As(err, &semantic):
		field := fieldPath(semantic.JSONPointer)
		var own *quantityError
		if errors.As(semantic.Err, &own) {
			return fmt.Sprintf("field %q: %s", field, own.Error())
		}
		if field == "" { // the value itself: a Pod that is a string
			return fmt.Sprintf("it is %s, want an object", article(kindName(semantic.JSONKind)))
		}
		return fmt.Sprintf("field %q has the wrong type (%s, want %s)", field, kindName(semantic.JSONKind), goTypeName(semantic))
	}
	return "the JSON cannot be decoded"
}

// syntaxReason is the syntax error's cause without the quoted input jsontext adds to some.
func syntaxReason(e *jsontext.SyntacticError) string {
	if e.Err == nil {
		return "invalid JSON"
	}
	msg := e.Err.Error()
	if i := strings.Index(msg, " within "); i > 0 {
		msg = msg[:i]
	}
	return msg
}

// fieldPath turns a JSON pointer (/request/object/spec/containers/0) into the dotted path
// users know from kubectl (request.object.spec.containers[0]).
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "unknown"
}

// goTypeName names the Go type a value was meant for: its name when it has one (types.UID),
// else what it is in JSON terms (an anonymous struct prints as its whole definition).
func goTypeName(e *json.SemanticError) string {
	t := e.GoType
	if t == nil {
		return "unknown"
	}
	if t.Name() != "" {
		return t.String()
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return t.Kind().String()
}

// WrongTypeError says a member of a JSON document has the wrong type, by path and type only.
type WrongTypeError struct {
	// Pointer locates the member (RFC 6901), Got is its JSON kind, Want what was expected.
	Pointer jsontext.Pointer
	Got     jsontext.Kind
	Want    string
}

func (e *WrongTypeError) Error() string {
	return fmt.Sprintf("field %q has the wrong type (%s, want %s)", fieldPath(e.Pointer), kindName(e.Got), e.Want)
}

// ExtendedResources is a container's resources.requests or resources.limits as far as policies
// see it: the extended resources only (names with a "/", such as nvidia.com/gpu). cpu and
// memory, in every container of every Pod, are checked to be quantities and skipped without
// being built.
type ExtendedResources map[string]Quantity

// UnmarshalJSONFrom reads a resource list, keeping only the extended resources.
func (r *ExtendedResources) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '{' { // null, or the wrong type: as any map would be read
		return json.UnmarshalDecode(dec, (*map[string]Quantity)(r))
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	var unquoted [64]byte
	for dec.PeekKind() != '}' {
		raw, err := dec.ReadValue() // the name, quoted; valid until the next read
		if err != nil {
			return err
		}
		name := raw[1 : len(raw)-1]
		if bytes.IndexByte(name, '\\') >= 0 {
			if name, err = jsontext.AppendUnquote(unquoted[:0], raw); err != nil {
				return err
			}
		}
		if bytes.IndexByte(name, '/') < 0 {
			if kind := dec.PeekKind(); kind != '"' && kind != '0' {
				var q Quantity
				return atMember(dec, q.UnmarshalJSONFrom(dec)) // the error naming the type
			}
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		var q Quantity
		if err := q.UnmarshalJSONFrom(dec); err != nil {
			return atMember(dec, err)
		}
		if *r == nil {
			*r = ExtendedResources{}
		}
		(*r)[string(name)] = q
	}
	_, err := dec.ReadToken()
	return err
}

// atMember places a quantity's error at the member just read (resources.limits.nvidia.com/gpu),
// as json places it in a map it reads itself.
func atMember(dec *jsontext.Decoder, err error) error {
	var own *quantityError
	if !errors.As(err, &own) {
		return err
	}
	return &json.SemanticError{JSONPointer: dec.StackPointer(), Err: err}
}

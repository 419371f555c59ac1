// Package manifest reads Kubernetes objects from YAML or JSON files the way kubectl writes them:
// several documents separated by "---", or one `kind: List`. It exists so that `eval`, `serve
// --cluster` and the test suites all read fixtures the same way, with errors that name the file
// and the document.
package manifest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	resourcev1 "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Object is one decoded object and where it came from.
type Object struct {
	Object runtime.Object
	// Raw is the object as JSON, as the API server would send it in an AdmissionReview.
	Raw []byte
	// Source names the file and document, e.g. "pods.yaml#2" (documents count from 1).
	Source string
}

var scheme = runtime.NewScheme()

// decoder is strict about kinds (unknown kinds are errors) but not about fields, like the API
// server with its default field validation.
var decoder runtime.Decoder

func init() {
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, nodev1.AddToScheme, resourcev1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	decoder = serializer.NewCodecFactory(scheme).UniversalDeserializer()
}

// wantKinds ends the error for an unsupported kind.
const wantKinds = "(want Pod, Namespace, Node, RuntimeClass, ResourceClaimTemplate, ResourceClaim or List)"

// ReadFile reads every object in path. Supported kinds: Pod, Namespace, Node, RuntimeClass,
// ResourceClaimTemplate and ResourceClaim (resource.k8s.io/v1), and List of those.
func ReadFile(path string) ([]Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, path)
}

// Read reads every object from r; name is used in error messages and Source.
func Read(r io.Reader, name string) ([]Object, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []Object
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		objs, err := decodeDocument(raw, fmt.Sprintf("%s#%d", name, doc))
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

func decodeDocument(raw []byte, source string) ([]Object, error) {
	js, err := utilyaml.ToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: not valid YAML or JSON: %w", source, err)
	}
	obj, gvk, err := decoder.Decode(js, nil, nil)
	if err != nil {
		if runtime.IsNotRegisteredError(err) || runtime.IsMissingKind(err) || runtime.IsMissingVersion(err) {
			return nil, fmt.Errorf("%s: %w %s", source, err, wantKinds)
		}
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if list, ok := obj.(*metav1.List); ok {
		var out []Object
		for i, item := range list.Items {
			items, err := decodeDocument(item.Raw, fmt.Sprintf("%s item %d", source, i+1))
			if err != nil {
				return nil, err
			}
			out = append(out, items...)
		}
		return out, nil
	}
	if list, ok := obj.(*corev1.List); ok {
		var out []Object
		for i, item := range list.Items {
			items, err := decodeDocument(item.Raw, fmt.Sprintf("%s item %d", source, i+1))
			if err != nil {
				return nil, err
			}
			out = append(out, items...)
		}
		return out, nil
	}
	switch obj.(type) {
	case *corev1.Pod, *corev1.Namespace, *corev1.Node, *nodev1.RuntimeClass,
		*resourcev1.ResourceClaimTemplate, *resourcev1.ResourceClaim:
	default:
		return nil, fmt.Errorf("%s: unsupported kind %s %s", source, gvk.Kind, wantKinds)
	}
	return []Object{{Object: obj, Raw: js, Source: source}}, nil
}

// stripComments drops whole-line YAML comments so a document holding only comments counts as
// empty.
func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '#' {
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

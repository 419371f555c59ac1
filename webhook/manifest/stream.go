package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// MaxManifestBytes caps what ReadManifests reads in all, so a huge or endless input (a 100 MB
// file, /dev/zero) is refused with a message rather than read into memory. Real manifests are
// far smaller; the API server itself refuses objects over 3 MiB in etcd.
const MaxManifestBytes = 16 << 20

// Document is one object of a manifest stream, as `runtimeguard eval` sees it: a Pod or a
// workload to decide, an object of another kind to list as skipped, or a document that cannot
// be read (Err).
type Document struct {
	// Source names the file and document, e.g. "app.yaml#2" or "list.json#1 item 3".
	Source string
	// GVK is the document's apiVersion and kind as written.
	GVK schema.GroupVersionKind
	// Namespace and Name are as written; Name is metadata.generateName when name is unset.
	Namespace, Name string
	// Raw is the object as JSON, as the API server would send it in an AdmissionReview.
	Raw []byte
	// Object is the Pod or workload decoded strictly; nil when the document is skipped or bad.
	Object runtime.Object
	// Workload says whether Object is a workload (a Deployment, Job...), not a Pod.
	Workload bool
	// Err says why the document cannot be decided; it names Source.
	Err error
}

// Skipped says whether the document is neither decided nor bad.
func (d Document) Skipped() bool { return d.Err == nil && d.Object == nil }

// WorkloadKind is a kind whose objects hold a Pod template, and where.
type WorkloadKind struct {
	GVK schema.GroupVersionKind
	// Template is the path of the Pod template in the object.
	Template []string
}

var podGVK = corev1.SchemeGroupVersion.WithKind("Pod")

// workloadKinds are the kinds eval decides by their Pod template: the kinds the validating
// webhook reviews (webhook/workload.go, which a test keeps in step with this list).
var workloadKinds = []WorkloadKind{
	{appsv1.SchemeGroupVersion.WithKind("Deployment"), []string{"spec", "template"}},
	{appsv1.SchemeGroupVersion.WithKind("StatefulSet"), []string{"spec", "template"}},
	{appsv1.SchemeGroupVersion.WithKind("DaemonSet"), []string{"spec", "template"}},
	{appsv1.SchemeGroupVersion.WithKind("ReplicaSet"), []string{"spec", "template"}},
	{corev1.SchemeGroupVersion.WithKind("ReplicationController"), []string{"spec", "template"}},
	{batchv1.SchemeGroupVersion.WithKind("Job"), []string{"spec", "template"}},
	{batchv1.SchemeGroupVersion.WithKind("CronJob"), []string{"spec", "jobTemplate", "spec", "template"}},
}

// WorkloadKinds lists the workload kinds ReadManifests decodes as workloads.
func WorkloadKinds() []WorkloadKind { return append([]WorkloadKind(nil), workloadKinds...) }

// strictDecoder decodes Pods and workloads refusing unknown and duplicate fields, as `kubectl
// apply` does with its default (strict) field validation: a misspelt field would otherwise be
// dropped and the decision made on something else than what the author meant.
var strictDecoder runtime.Decoder

func init() {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	strictDecoder = serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}

// ReadManifests reads every document of paths the way `kubectl apply -f` does: "-" is f.In, a
// directory holds .json, .yaml and .yml files (and, with recursive, its subdirectories'),
// a file is a stream of YAML documents separated by "---" or of JSON objects, and a List is
// unpacked. A document that cannot be read is returned with its Err and the others are still
// read; at most MaxManifestBytes are read in all.
func (f *Files) ReadManifests(paths []string, recursive bool) []Document {
	var out []Document
	budget := int64(MaxManifestBytes)
	for _, p := range paths {
		files, err := f.expand(p, recursive)
		if err != nil {
			out = append(out, Document{Source: p, Err: err})
			continue
		}
		for _, file := range files {
			data, err := f.readCapped(file, &budget)
			if err != nil {
				out = append(out, Document{Source: file, Err: err})
				continue
			}
			name := file
			if file == Stdin {
				name = "stdin"
			}
			out = append(out, splitDocuments(data, name)...)
		}
	}
	return out
}

// expand turns a path into the files it stands for.
func (f *Files) expand(path string, recursive bool) ([]string, error) {
	if path == Stdin {
		return []string{Stdin}, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".json", ".yaml", ".yml":
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		hint := ""
		if !recursive {
			hint = " (give -R to read its subdirectories too)"
		}
		return nil, fmt.Errorf("%s: a directory without .json, .yaml or .yml files%s", path, hint)
	}
	return files, nil
}

// readCapped reads file ("-": f.In) whole, taking its size from budget.
func (f *Files) readCapped(file string, budget *int64) ([]byte, error) {
	var r io.Reader
	if file == Stdin {
		in, err := f.stdin()
		if err != nil {
			return nil, err
		}
		r = in
	} else {
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, *budget+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if int64(len(data)) > *budget {
		return nil, fmt.Errorf("%s: the manifests are over %d MiB in all, more than runtimeguard reads in one run; split them over several runs", displayName(file), MaxManifestBytes>>20)
	}
	*budget -= int64(len(data))
	return data, nil
}

func displayName(file string) string {
	if file == Stdin {
		return "stdin"
	}
	return file
}

// splitDocuments splits a file into its documents: JSON objects one after the other, or YAML
// documents between "---" lines. Documents count from 1; comment-only ones count but hold
// nothing.
func splitDocuments(data []byte, name string) []Document {
	var out []Document
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for doc := 1; ; doc++ {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				return out
			}
			source := fmt.Sprintf("%s#%d", name, doc)
			if err != nil {
				// A JSON stream cannot be resynchronised after a syntax error.
				return append(out, Document{Source: source, Err: fmt.Errorf("%s: not valid JSON: %w", source, err)})
			}
			out = append(out, decodeManifest(raw, source, nil)...)
		}
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		source := fmt.Sprintf("%s#%d", name, doc)
		if err != nil {
			return append(out, Document{Source: source, Err: fmt.Errorf("%s: %w", source, err)})
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		// The yaml library refuses alias bombs ("excessive aliasing") and nesting over 10,000
		// levels with an error, within the size cap.
		js, err := utilyaml.ToJSON(raw)
		if err != nil {
			out = append(out, Document{Source: source, Err: fmt.Errorf("%s: not valid YAML or JSON: %w", source, err)})
			continue
		}
		strictYAML := func() error {
			_, err := sigsyaml.YAMLToJSONStrict(raw)
			return err
		}
		out = append(out, decodeManifest(js, source, strictYAML)...)
	}
}

// header is what every document is read for first.
type header struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"`
	// Items is read only for a List: other kinds may have a member of that name.
	Items json.RawMessage `json:"items"`
}

type objectMeta struct {
	Name         string `json:"name"`
	GenerateName string `json:"generateName"`
	Namespace    string `json:"namespace"`
}

// decodeManifest reads one JSON document; strictYAML (nil for JSON) reports what the YAML
// to JSON conversion let pass, such as duplicate keys.
func decodeManifest(js []byte, source string, strictYAML func() error) []Document {
	bad := func(format string, args ...any) []Document {
		return []Document{{Source: source, Err: fmt.Errorf("%s: %s", source, fmt.Sprintf(format, args...))}}
	}
	var h header
	if err := json.Unmarshal(js, &h); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return bad("want an object (apiVersion, kind, metadata...), got a JSON %s", typeErr.Value)
		}
		return bad("%v", err)
	}
	switch {
	case h.Kind == "" && h.APIVersion == "":
		return bad("apiVersion and kind are not set: is this a Kubernetes object?")
	case h.Kind == "":
		return bad("kind is not set")
	case h.APIVersion == "":
		return bad("apiVersion is not set (kind %s)", h.Kind)
	}
	gvk := schema.FromAPIVersionAndKind(h.APIVersion, h.Kind)
	if h.Kind == "List" {
		var items []json.RawMessage
		if err := json.Unmarshal(h.Items, &items); err != nil && len(h.Items) > 0 {
			return bad("items of a List: %v", err)
		}
		if strictYAML != nil {
			// The whole document is checked once, when its first Pod or workload is read.
			check, checked := strictYAML, false
			strictYAML = func() error {
				if checked {
					return nil
				}
				checked = true
				return check()
			}
		}
		var out []Document
		for i, item := range items {
			out = append(out, decodeManifest(item, fmt.Sprintf("%s item %d", source, i+1), strictYAML)...)
		}
		return out
	}
	var meta objectMeta
	_ = json.Unmarshal(h.Metadata, &meta) // a skipped object's metadata is not ours to judge
	doc := Document{Source: source, GVK: gvk, Namespace: meta.Namespace, Name: meta.Name, Raw: js}
	if doc.Name == "" {
		doc.Name = meta.GenerateName
	}
	wk, workload := workloadKind(gvk)
	if gvk != podGVK && !workload {
		if want, ok := servedVersion(gvk); ok {
			return bad("%s %q: apiVersion %q is not one runtimeguard (or a current API server) knows for kind %s; want %s",
				strings.ToLower(gvk.Kind), doc.Name, h.APIVersion, gvk.Kind, want)
		}
		return []Document{doc} // skipped: not a Pod or a workload
	}
	what := fmt.Sprintf("%s %q", strings.ToLower(gvk.Kind), doc.Name)
	if strictYAML != nil {
		if err := strictYAML(); err != nil {
			// The yaml library lists its errors on several lines: keep one line per document.
			return bad("%s: %s", what, strings.Join(strings.Fields(err.Error()), " "))
		}
	}
	obj, _, err := strictDecoder.Decode(js, nil, nil)
	if err != nil {
		if runtime.IsStrictDecodingError(err) {
			return bad("%s: %s (check the spelling and indentation)", what, strings.TrimPrefix(err.Error(), "strict decoding error: "))
		}
		return bad("%s: %v", what, err)
	}
	if err := checkTemplate(js, gvk, wk, workload); err != nil {
		return bad("%s: %v", what, err)
	}
	doc.Object, doc.Workload = obj, workload
	return []Document{doc}
}

func workloadKind(gvk schema.GroupVersionKind) (WorkloadKind, bool) {
	for _, k := range workloadKinds {
		if k.GVK == gvk {
			return k, true
		}
	}
	return WorkloadKind{}, false
}

// builtinGroups are the API groups of the Pod and workload kinds, and extensions, where apps
// kinds used to be: a Pod or workload kind in one of them under another apiVersion is a
// mistake (apps/v1beta1 Deployment, batch/v1beta1 CronJob, v1 Deployment), while a kind of
// another group is someone else's (Volcano's batch.volcano.sh Job) and is skipped.
var builtinGroups = map[string]bool{"": true, "apps": true, "batch": true, "extensions": true}

// servedVersion returns the apiVersion to use when gvk is a Pod or workload kind under an
// apiVersion of the built-in groups that does not serve it.
func servedVersion(gvk schema.GroupVersionKind) (string, bool) {
	if !builtinGroups[gvk.Group] {
		return "", false
	}
	for _, k := range append([]WorkloadKind{{GVK: podGVK}}, workloadKinds...) {
		if k.GVK.Kind == gvk.Kind {
			return k.GVK.GroupVersion().String(), true
		}
	}
	return "", false
}

// checkTemplate refuses what the API server would refuse before any webhook saw it and that
// would otherwise be decided as an empty Pod: a workload without its Pod template, a Pod or
// template without containers.
func checkTemplate(js []byte, gvk schema.GroupVersionKind, wk WorkloadKind, workload bool) error {
	var obj map[string]any
	if err := json.Unmarshal(js, &obj); err != nil {
		return err
	}
	path := []string{"spec"}
	if workload {
		path = append(append([]string(nil), wk.Template...), "spec")
	}
	var at any = obj
	for i, name := range path {
		m, _ := at.(map[string]any)
		if at = m[name]; at == nil {
			field := strings.Join(path[:i+1], ".")
			if workload && i < len(wk.Template) {
				return fmt.Errorf("%s is missing: a %s needs its Pod template at %s", field, gvk.Kind, strings.Join(wk.Template, "."))
			}
			return fmt.Errorf("%s is missing", field)
		}
	}
	spec, _ := at.(map[string]any)
	containers, _ := spec["containers"].([]any)
	if len(containers) == 0 {
		what := "a Pod"
		if workload {
			what = "a Pod template"
		}
		return fmt.Errorf("%s.containers is empty: %s needs at least one container", strings.Join(path, "."), what)
	}
	return nil
}

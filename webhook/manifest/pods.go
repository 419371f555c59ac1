package manifest

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ReadPods reads every object in the files ("-" is f.In); anything that is not a Pod is an
// error.
func (f *Files) ReadPods(paths []string) ([]Object, error) {
	var pods []Object
	for _, p := range paths {
		objs, err := f.Read(p)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if _, ok := o.Object.(*corev1.Pod); !ok {
				return nil, fmt.Errorf("%s: want a Pod, got %s", o.Source, o.Object.GetObjectKind().GroupVersionKind().Kind)
			}
			pods = append(pods, o)
		}
	}
	return pods, nil
}

// PodIdentity returns the namespace ("default" when unset, as kubectl would) and the name (or
// generateName) a Pod object is created under.
func PodIdentity(o Object) (namespace, name string) {
	pod := o.Object.(*corev1.Pod)
	namespace, name = pod.Namespace, pod.Name
	if namespace == "" {
		namespace = "default"
	}
	if name == "" {
		name = pod.GenerateName
	}
	return namespace, name
}

// PickPod returns the only Pod, or the one want ("NAME" or "NAMESPACE/NAME") names; file is
// for errors.
func PickPod(pods []Object, want, file string) (Object, error) {
	if want == "" {
		if len(pods) != 1 {
			return Object{}, fmt.Errorf("%s holds %d Pods: pick one with --pod [NAMESPACE/]NAME", file, len(pods))
		}
		return pods[0], nil
	}
	wantNS, wantName, qualified := strings.Cut(want, "/")
	if !qualified {
		wantNS, wantName = "", want
	}
	var found []Object
	var names []string
	for _, p := range pods {
		ns, name := PodIdentity(p)
		names = append(names, ns+"/"+name)
		if name == wantName && (wantNS == "" || ns == wantNS) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Object{}, fmt.Errorf("--pod %s: no such Pod in %s (it holds %s)", want, file, strings.Join(names, ", "))
	}
	return Object{}, fmt.Errorf("--pod %s: %d Pods of that name in %s; say NAMESPACE/NAME", want, len(found), file)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/runtimeguard/runtimeguard/policies"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/manifest"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// explainModule is the name the embedded explain.rego gets when it is added to a policy set that
// lacks it.
const explainModule = "(embedded) explain.rego"

// explainablePolicies loads the policy directories (or the embedded policy) and, when no module
// defines data.runtimeguard.explain, adds the embedded policies/explain.rego: it explains any set
// built on the default policy's rules.
func explainablePolicies(dirs []string) (*policy.Set, error) {
	set, err := webhook.LoadPolicies(dirs)
	if err != nil {
		return nil, err
	}
	return withExplain(set)
}

func withExplain(set *policy.Set) (*policy.Set, error) {
	if policy.DefinesExplain(set) {
		return set, nil
	}
	src, err := fs.ReadFile(policies.FS, "explain.rego")
	if err != nil {
		return nil, err
	}
	m, err := ast.ParseModuleWithOpts(explainModule, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	if err != nil {
		return nil, err
	}
	out := &policy.Set{Modules: make(map[string]*ast.Module, len(set.Modules)+1), Data: set.Data, Files: append(append([]string(nil), set.Files...), explainModule)}
	for k, v := range set.Modules {
		out.Modules[k] = v
	}
	out.Modules[explainModule] = m
	return out, nil
}

// liveFlags adds --kubeconfig to the commands that can read a live cluster instead of fixtures.
type liveFlags struct {
	kubeconfig string
}

func (l *liveFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.kubeconfig, "kubeconfig", "", "read Nodes, RuntimeClasses and Namespaces from this cluster (one listing, no watch) instead of --cluster files; an empty value means in-cluster config or $KUBECONFIG")
}

// view returns the live view when --kubeconfig was given, nil otherwise (then the --cluster files
// are used). Exactly one of the two must be given.
func (l *liveFlags) view(cmd *cobra.Command, f *offlineFlags) (*cluster.View, error) {
	live := cmd.Flags().Changed("kubeconfig")
	switch {
	case live && len(f.clusterFiles) > 0:
		return nil, errors.New("give --cluster FILE... or --kubeconfig PATH, not both")
	case !live && len(f.clusterFiles) == 0:
		return nil, errors.New("give --cluster FILE... (fixtures) or --kubeconfig PATH (a live cluster)")
	case !live:
		return nil, nil
	}
	var cfg *rest.Config
	var err error
	if l.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", l.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	return cluster.List(cmd.Context(), c, cluster.Options{RequireAdvertisedHandlers: f.requireAdvertised})
}

// tracePod evaluates data.runtimeguard.explain for a Pod with the input the admitter would build
// (same Namespace lookup, same decoding); the set of o must define explain.
func tracePod(ctx context.Context, o *offline, obj manifest.Object) (map[string]any, error) {
	ns, _ := podIdentity(obj)
	nsMeta, _, err := o.view.Namespace(ctx, ns)
	if err != nil {
		return nil, err
	}
	pod, err := policy.DecodePod(obj.Raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj.Source, err)
	}
	if pod.Metadata.Namespace == "" {
		pod.Metadata.Namespace = ns
	}
	t, err := o.engine.Explain(ctx, policy.Request{Operation: "CREATE", Namespace: nsMeta, Pod: pod, Cluster: o.view.Snapshot()})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj.Source, err)
	}
	return t, nil
}

// podIdentity returns the namespace (default "default") and name (or generateName) as simulate
// uses them.
func podIdentity(obj manifest.Object) (namespace, name string) {
	pod := obj.Object.(*corev1.Pod)
	namespace, name = pod.Namespace, pod.Name
	if namespace == "" {
		namespace = "default"
	}
	if name == "" {
		name = pod.GenerateName
	}
	return namespace, name
}

// tracedOutcome is one line of eval -o json --trace.
type tracedOutcome struct {
	webhook.Outcome
	Trace map[string]any `json:"trace"`
}

func writeTracedJSON(w io.Writer, outcomes []webhook.Outcome, traces []map[string]any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i, o := range outcomes {
		if err := enc.Encode(tracedOutcome{Outcome: o, Trace: traces[i]}); err != nil {
			return err
		}
	}
	return nil
}

// explanation is the -o json document of explain.
type explanation struct {
	Source    string `json:"source"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Exempt says why runtimeguard does not review the Pod at all ("" when it does).
	Exempt string         `json:"exempt,omitempty"`
	Trace  map[string]any `json:"trace"`
	// Availability is the cluster view's availability of each RuntimeClass, node counts included.
	Availability map[string]cluster.Availability `json:"availability"`
	Outcome      webhook.Outcome                 `json:"outcome"`
	PolicyFiles  []string                        `json:"policyFiles"`
}

// traceDoc is the typed form of data.runtimeguard.explain (policies/explain.rego).
type traceDoc struct {
	Traits map[string]struct {
		Sources  []string       `json:"sources"`
		Requires map[string]any `json:"requires"`
	} `json:"traits"`
	Requirements struct {
		Isolation int  `json:"isolation"`
		GPU       bool `json:"gpu"`
	} `json:"requirements"`
	NamedClass  string `json:"named_class"`
	ChosenClass string `json:"chosen_class"`
	Override    *struct {
		Class   string `json:"class"`
		Source  string `json:"source"`
		Applied bool   `json:"applied"`
	} `json:"override"`
	Classes []struct {
		Name               string   `json:"name"`
		Handler            string   `json:"handler"`
		Listed             bool     `json:"listed"`
		Isolation          int      `json:"isolation"`
		GPU                bool     `json:"gpu"`
		Meets              bool     `json:"meets"`
		Exists             bool     `json:"exists"`
		Available          bool     `json:"available"`
		AvailabilityReason string   `json:"availability_reason"`
		Conflicts          []string `json:"conflicts"`
		Verdict            string   `json:"verdict"`
	} `json:"classes"`
}

func newExplainCommand() *cobra.Command {
	var flags offlineFlags
	var live liveFlags
	var podName, output string
	cmd := &cobra.Command{
		Use:   "explain (--cluster FILE... | --kubeconfig PATH) [--policies DIR]... [--pod [NAMESPACE/]NAME] [-o text|json] POD_FILE",
		Short: "Explain the decision for one Pod: its traits, requirements, each class considered and why",
		Long: `explain shows, for one Pod, the traits the policy found and where each came from (namespace
label, pod label, extended resource request), what they require, every class in the policy's price
order with why it was chosen or skipped (isolation too low, no GPU, not available with the node
counts of the cluster view, nodeSelector conflict), and the final decision of the mutating and
validating webhooks (patch, verdict, message, warnings).

The per-class trace is data.runtimeguard.explain (policies/explain.rego); it is added to the policy
set when the --policies directories do not define it. POD_FILE must hold one Pod, or use --pod to
pick one. Exit code: 0 allowed, 1 denied, 2 bad input.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: want text or json", output)
			}
			pods, err := readPods(args)
			if err != nil {
				return err
			}
			pod, err := pickPod(pods, podName, args[0])
			if err != nil {
				return err
			}
			view, err := live.view(cmd, &flags)
			if err != nil {
				return err
			}
			set, err := explainablePolicies(flags.policyDirs)
			if err != nil {
				return err
			}
			o, err := flags.build(cmd.Context(), view, set)
			if err != nil {
				return err
			}
			out, err := simulate(cmd.Context(), o.admitter, pod)
			if err != nil {
				return err
			}
			t, err := tracePod(cmd.Context(), o, pod)
			if err != nil {
				return err
			}
			ns, name := podIdentity(pod)
			e := explanation{Source: pod.Source, Namespace: ns, Name: name, Trace: t, Outcome: out,
				Availability: map[string]cluster.Availability{}, PolicyFiles: o.engine.Files()}
			e.Exempt, err = exemption(cmd.Context(), o.view, &flags, pod)
			if err != nil {
				return err
			}
			for cn, c := range o.view.Snapshot().Classes {
				e.Availability[cn] = c.Availability
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				err = enc.Encode(e)
			} else {
				err = writeExplanation(cmd.OutOrStdout(), &e)
			}
			if err != nil {
				return err
			}
			if !out.Allowed {
				return exitCode(1)
			}
			return nil
		},
	}
	flags.add(cmd)
	live.add(cmd)
	cmd.Flags().StringVar(&podName, "pod", "", "the Pod to explain when POD_FILE holds several: NAME or NAMESPACE/NAME")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// pickPod returns the only Pod, or the one --pod names.
func pickPod(pods []manifest.Object, want, file string) (manifest.Object, error) {
	if want == "" {
		if len(pods) != 1 {
			return manifest.Object{}, fmt.Errorf("%s holds %d Pods: explain takes one; pick it with --pod [NAMESPACE/]NAME", file, len(pods))
		}
		return pods[0], nil
	}
	wantNS, wantName, qualified := strings.Cut(want, "/")
	if !qualified {
		wantNS, wantName = "", want
	}
	var found []manifest.Object
	var names []string
	for _, p := range pods {
		ns, name := podIdentity(p)
		names = append(names, ns+"/"+name)
		if name == wantName && (wantNS == "" || ns == wantNS) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return manifest.Object{}, fmt.Errorf("--pod %s: no such Pod in %s (it holds %s)", want, file, strings.Join(names, ", "))
	}
	return manifest.Object{}, fmt.Errorf("--pod %s: %d Pods of that name in %s; say NAMESPACE/NAME", want, len(found), file)
}

// exemption repeats the admitter's early exits (kube-system, runtimeguard's own namespace, the
// ignore label, mirror pods) so explain can say the trace does not apply.
func exemption(ctx context.Context, view *cluster.View, f *offlineFlags, obj manifest.Object) (string, error) {
	ns, _ := podIdentity(obj)
	pod := obj.Object.(*corev1.Pod)
	switch {
	case ns == "kube-system" || (f.namespace != "" && ns == f.namespace):
		return fmt.Sprintf("namespace %q is exempt", ns), nil
	case pod.Annotations["kubernetes.io/config.mirror"] != "":
		return "mirror pods are managed by the kubelet and exempt", nil
	}
	meta, _, err := view.Namespace(ctx, ns)
	if err != nil {
		return "", err
	}
	if meta.Labels[webhook.IgnoreLabel] == "true" {
		return fmt.Sprintf("namespace %q is labelled %s=true", ns, webhook.IgnoreLabel), nil
	}
	return "", nil
}

func writeExplanation(w io.Writer, e *explanation) error {
	var t traceDoc
	b, err := json.Marshal(e.Trace)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return fmt.Errorf("data.runtimeguard.explain has an unexpected shape: %w", err)
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("Pod %s/%s (%s)\n", e.Namespace, e.Name, e.Source)
	p("Policy files: %s\n", strings.Join(e.PolicyFiles, ", "))
	if e.Exempt != "" {
		p("\nNot reviewed: %s. runtimeguard admits the pod unchanged; the trace below is what the policy would decide.\n", e.Exempt)
	}

	p("\nTraits\n")
	if len(t.Traits) == 0 {
		p("  none\n")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, name := range sortedKeys(t.Traits) {
			tr := t.Traits[name]
			for i, src := range tr.Sources {
				needs := ""
				if i == 0 {
					needs = "requires " + requiresText(tr.Requires)
				}
				label := name
				if i > 0 {
					label = ""
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", label, src, needs)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	p("\nRequirements: %s\n", requirementText(t.Requirements.Isolation, t.Requirements.GPU))
	if t.NamedClass != "" {
		p("The pod names runtime class %q: nothing is injected; the validating webhook judges that class (see Decision).\n", t.NamedClass)
	}
	if t.Override != nil {
		state := "applied"
		if !t.Override.Applied {
			state = "rejected: it does not meet the requirements or cannot run the pod, and an override never falls back"
		}
		p("Class override: %s asks for %q (%s)\n", t.Override.Source, t.Override.Class, state)
	}

	p("\nClasses, in the policy's price order (no GPU before GPU, then lowest isolation, then data.config.classes order)\n")
	for i, c := range t.Classes {
		gpu := "no GPU"
		if c.GPU {
			gpu = "GPU"
		}
		listed := ""
		if !c.Listed {
			listed = ", not in data.config.classes"
		}
		handler := "not in the cluster"
		if c.Exists {
			handler = fmt.Sprintf("handler %q", c.Handler)
		}
		p("  %d. %s (%s): isolation %d, %s%s\n", i+1, c.Name, handler, c.Isolation, gpu, listed)
		p("       meets the requirements: %s\n", yesNo(c.Meets))
		p("       available: %s: %s\n", yesNo(c.Available), c.AvailabilityReason)
		if a, ok := e.Availability[c.Name]; ok && (!a.Available || strings.Contains(countsText(a.Counts), ";")) {
			p("       nodes: %s\n", countsText(a.Counts)) // only when it says more than the line above
		}
		for _, conflict := range c.Conflicts {
			p("       nodeSelector conflict: %s\n", conflict)
		}
		p("       verdict: %s\n", c.Verdict)
	}
	if len(t.Classes) == 0 {
		p("  none (data.config.classes is empty and the cluster has no RuntimeClass)\n")
	}

	o := e.Outcome
	p("\nDecision\n")
	switch {
	case o.Mutated:
		patches := make([]string, len(o.Patch))
		for i, raw := range o.Patch {
			patches[i] = string(raw)
		}
		p("  mutate:   injected runtime class %q; patch [%s]\n", o.RuntimeClassName, strings.Join(patches, ", "))
	default:
		p("  mutate:   no patch\n")
	}
	if o.Allowed {
		p("  validate: allowed\n")
	} else {
		p("  validate: DENIED\n  message:  %s\n", o.Message)
	}
	class := o.RuntimeClassName
	if class == "" {
		class = "(none: the node's default runtime)"
	}
	p("  runtimeClassName: %s\n", class)
	if len(o.Reasons) > 0 {
		p("  reasons:\n")
		for _, r := range o.Reasons {
			p("    - %s\n", r)
		}
	}
	if len(o.Warnings) == 0 {
		p("  warnings: none\n")
	} else {
		p("  warnings:\n")
		for _, wn := range o.Warnings {
			p("    - %s\n", wn)
		}
	}
	return nil
}

func requiresText(req map[string]any) string {
	iso := 0
	if n, ok := req["isolation"].(float64); ok {
		iso = int(n)
	}
	gpu, _ := req["gpu"].(bool)
	if iso == 0 && !gpu {
		return "nothing"
	}
	return requirementText(iso, gpu)
}

func requirementText(isolation int, gpu bool) string {
	switch {
	case isolation > 0 && gpu:
		return fmt.Sprintf("isolation >= %d and a GPU runtime", isolation)
	case gpu:
		return "a GPU runtime"
	case isolation > 0:
		return fmt.Sprintf("isolation >= %d", isolation)
	}
	return "none (no trait requires a sandboxed or GPU runtime)"
}

// countsText says what the cluster view counted for a class, leaving out zeros.
func countsText(c cluster.Counts) string {
	parts := []string{fmt.Sprintf("%d usable of %d (%d via status.runtimeHandlers, %d via labels)", c.ByStatus+c.ByLabels, c.Nodes, c.ByStatus, c.ByLabels)}
	for _, x := range []struct {
		n    int
		what string
	}{
		{c.NotReady, "NotReady"}, {c.Cordoned, "cordoned"}, {c.Untolerated, "with untolerated taints"},
		{c.SelectorMismatch, "advertising it without the nodeSelector labels"},
		{c.Drift, "labelled for it without reporting the handler"}, {c.Unlabelled, "reporting no handlers and unlabelled"},
	} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return strings.Join(parts, "; ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

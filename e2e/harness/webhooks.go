package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// Release and Namespace are the Helm release the tests render the chart as.
const (
	Release   = "runtimeguard"
	Namespace = "runtimeguard-system"
)

// Rendered holds the chart's rendered objects, decoded into typed objects where the harness
// needs them, and the raw documents for the rest.
type Rendered struct {
	Mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	Validating *admissionregistrationv1.ValidatingWebhookConfiguration
	Documents  [][]byte
}

// ChartTool is the tool RenderChart runs.
const ChartTool = "helm"

// RenderChart runs `helm template` on charts/runtimeguard with extra --set / -f arguments,
// with the helm of ctx's tools.Resolver (tools.WithResolver).
func RenderChart(ctx context.Context, args ...string) (*Rendered, error) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		return nil, err
	}
	resolver, err := tools.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	helm, err := resolver.Path(ChartTool)
	if err != nil {
		return nil, err
	}
	cmdArgs := append([]string{"template", Release, filepath.Join(root, "charts", "runtimeguard"), "--namespace", Namespace}, args...)
	cmd := exec.CommandContext(ctx, helm, cmdArgs...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template: %w: %s", err, stderr.String())
	}
	r := &Rendered{}
	docs := bytes.Split(out, []byte("\n---"))
	for _, doc := range docs {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil || meta.Kind == "" {
			continue
		}
		r.Documents = append(r.Documents, doc)
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			r.Mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, r.Mutating); err != nil {
				return nil, fmt.Errorf("chart's MutatingWebhookConfiguration: %w", err)
			}
		case "ValidatingWebhookConfiguration":
			r.Validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, r.Validating); err != nil {
				return nil, fmt.Errorf("chart's ValidatingWebhookConfiguration: %w", err)
			}
		}
	}
	// native.mode native renders no MutatingWebhookConfiguration.
	if r.Validating == nil {
		return nil, errors.New("the chart rendered no ValidatingWebhookConfiguration")
	}
	return r, nil
}

func servicePath(c admissionregistrationv1.WebhookClientConfig) string {
	if c.Service == nil || c.Service.Path == nil {
		return ""
	}
	return *c.Service.Path
}

// PointAt rewrites the webhook configurations to call a local process at baseURL (the API
// server runs outside any cluster network, so the chart's Service reference cannot be used)
// with caBundle, and drops cert-manager's injection annotation. Everything else (rules,
// selectors, failurePolicy, matchConditions, timeouts) stays as the chart renders it.
func (r *Rendered) PointAt(baseURL string, caBundle []byte) {
	for i := range r.mutatingWebhooks() {
		wh := &r.Mutating.Webhooks[i]
		url := baseURL + servicePath(wh.ClientConfig)
		wh.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
	}
	for i := range r.Validating.Webhooks {
		wh := &r.Validating.Webhooks[i]
		url := baseURL + servicePath(wh.ClientConfig)
		wh.ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
	}
	if r.Mutating != nil {
		delete(r.Mutating.Annotations, "cert-manager.io/inject-ca-from")
	}
	delete(r.Validating.Annotations, "cert-manager.io/inject-ca-from")
}

// Apply creates or replaces both webhook configurations.
func (r *Rendered) Apply(ctx context.Context, c client.Client) error {
	for _, obj := range r.configurations() {
		if err := c.Create(ctx, obj); apierrors.IsAlreadyExists(err) {
			existing := obj.DeepCopyObject().(client.Object)
			if err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing); err != nil {
				return err
			}
			obj.SetResourceVersion(existing.GetResourceVersion())
			if err := c.Update(ctx, obj); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	return nil
}

// Delete removes both webhook configurations.
func (r *Rendered) Delete(ctx context.Context, c client.Client) error {
	for _, obj := range r.configurations() {
		if err := c.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// configurations are copies of the rendered webhook configurations (no mutating one in
// native mode).
func (r *Rendered) configurations() []client.Object {
	objs := []client.Object{r.Validating.DeepCopy()}
	if r.Mutating != nil {
		objs = append(objs, r.Mutating.DeepCopy())
	}
	return objs
}

func (r *Rendered) mutatingWebhooks() []admissionregistrationv1.MutatingWebhook {
	if r.Mutating == nil {
		return nil
	}
	return r.Mutating.Webhooks
}

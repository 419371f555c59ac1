package policy

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

var (
	keyResourceClaims = ast.StringTerm("resourceClaims")
	keySource         = ast.StringTerm("source")
	keyDeviceClasses  = ast.StringTerm("deviceClasses")
	keyResolved       = ast.StringTerm("resolved")
	keyReason         = ast.StringTerm("reason")
)

// podInput builds input.pod with the Pod's resource claims resolved against req.Claims. The
// claims are resolved here, before the decision cache is consulted: they are part of the pod
// term that keys it, so a template created later gives a new key instead of a stale decision,
// and claim events need not move the cluster generation.
func podInput(ctx context.Context, req Request) (*ast.Term, error) {
	pod, err := podTerm(req.Pod)
	if err != nil {
		return nil, err
	}
	resolved := req.Claims.Resolve(ctx, req.Pod.Metadata.Namespace, req.Pod.Spec.ResourceClaims)
	pod.Value.(ast.Object).Insert(keyResourceClaims, claimsTerm(resolved))
	return pod, nil
}

// claimsTerm builds input.pod.resourceClaims.
func claimsTerm(claims []cluster.ResolvedClaim) *ast.Term {
	terms := make([]*ast.Term, len(claims))
	for i, c := range claims {
		classes := make([]*ast.Term, len(c.DeviceClasses))
		for j, dc := range c.DeviceClasses {
			classes[j] = ast.StringTerm(dc)
		}
		terms[i] = ast.ObjectTerm(
			ast.Item(keyName, ast.StringTerm(c.Name)),
			ast.Item(keySource, ast.StringTerm(c.Source)),
			ast.Item(keyDeviceClasses, ast.ArrayTerm(classes...)),
			ast.Item(keyResolved, ast.BooleanTerm(c.Resolved)),
			ast.Item(keyReason, ast.StringTerm(c.Reason)),
		)
	}
	return ast.ArrayTerm(terms...)
}

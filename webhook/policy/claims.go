package policy

import (
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

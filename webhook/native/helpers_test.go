package native

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/runtimeguard/runtimeguard/webhook"
)

// defaultData is the embedded default policy's data document.
func defaultData(t *testing.T) map[string]any {
	t.Helper()
	set, err := (&webhook.Options{}).LoadPolicies()
	if err != nil {
		t.Fatal(err)
	}
	return set.Data
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

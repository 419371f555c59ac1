package policy

import (
	"strings"
	"testing"
)

// Only extended resources reach a container's resource lists; cpu and memory are checked and
// skipped. Names are compared unquoted, so an escaped "/" still makes an extended resource.
func TestDecodeKeepsOnlyExtendedResources(t *testing.T) {
	pod := mustPod(t, `{"spec":{"containers":[{"name":"a","resources":{
		"requests":{"cpu":"100m","memory":"64Mi","nvidia.com\/gpu":"1","example.com/fpga":2},
		"limits":{"cpu":1,"nvidia.com/gpu":"1","nvidia.com/gpu":"2"}}}]}}`)
	c := pod.Spec.Containers[0]
	if got := pretty(c.Resources.Requests); got != pretty(map[string]Quantity{"nvidia.com/gpu": "1", "example.com/fpga": "2"}) {
		t.Errorf("requests = %s, want only the extended resources", got)
	}
	if got := pretty(c.Resources.Limits); got != pretty(map[string]Quantity{"nvidia.com/gpu": "2"}) {
		t.Errorf("limits = %s, want the last of the duplicate names and no cpu", got)
	}

	pod = mustPod(t, `{"spec":{"containers":[{"name":"a","resources":{"requests":{"cpu":"1"},"limits":null}}]}}`)
	if c := pod.Spec.Containers[0]; c.Resources.Requests != nil || c.Resources.Limits != nil {
		t.Errorf("resources = %s, want none kept", pretty(c.Resources))
	}

	for body, want := range map[string]string{
		`{"spec":{"containers":[{"resources":{"requests":{"cpu":{"secret":"x"}}}}]}}`:            `field "spec.containers[0].resources.requests.cpu": a resource quantity is an object, want a string or number`,
		`{"spec":{"containers":[{"resources":{"limits":{"nvidia.com/gpu":["secret"]}}}]}}`:       `field "spec.containers[0].resources.limits.nvidia.com/gpu": a resource quantity is an array, want a string or number`,
		`{"spec":{"containers":[{"resources":{"limits":["secret"]}}]}}`:                          "has the wrong type (array",
		`{"spec":{"containers":[{"resources":{"limits":{"cpu":"1",}}}]}}`:                        "invalid JSON",
		`{"spec":{"containers":[{"resources":{"limits":{"nvidia.com\u002fgpu":"1","x":tru}}}]}}`: "invalid JSON",
	} {
		_, err := DecodePod([]byte(body))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("DecodePod(%s) = %v, want an error with %q that does not quote the value", body, err, want)
		}
	}
}

# METADATA
# title: runtimeguard as a plain OPA admission webhook (benchmark comparison only)
# description: |
#   The kube-mgmt way of running a policy: `opa run --server` answers POST / with the value of
#   data.system.main, the whole AdmissionReview as input. This module does in Rego what
#   runtimeguard does in Go around the same default policy (policies/runtimeguard.rego and
#   policies/data.yaml, loaded unchanged): build the policy input from the review, then answer
#   with an AdmissionReview carrying the base64 JSON patch. OPA has no cluster view, so the
#   namespaces' labels and the RuntimeClasses with their availability come from data.bench,
#   written by e2e/bench/genfixtures the way kube-mgmt would replicate them.
package system

main := {
	"apiVersion": "admission.k8s.io/v1",
	"kind": "AdmissionReview",
	"response": response,
}

request := input.request

ns_name := request.namespace

ns_data := object.get(data.bench.namespaces, ns_name, {})

namespace := {
	"name": ns_name,
	"labels": object.get(ns_data, "labels", {}),
	"annotations": object.get(ns_data, "annotations", {}),
}

default reviewed := false

reviewed if {
	request.kind == {"group": "", "version": "v1", "kind": "Pod"}
	not request.subResource
	request.operation == "CREATE"
	ns_name != "kube-system"
	not namespace.labels["runtimeguard.io/ignore"] == "true"
	not request.object.metadata.annotations["kubernetes.io/config.mirror"]
}

metadata := object.get(request.object, "metadata", {})

spec := object.get(request.object, "spec", {})

pod := {
	"generateName": object.get(metadata, "generateName", ""),
	"namespace": object.get(metadata, "namespace", ns_name),
	"labels": object.get(metadata, "labels", {}),
	"annotations": object.get(metadata, "annotations", {}),
	"runtimeClassName": object.get(spec, "runtimeClassName", ""),
	"nodeSelector": object.get(spec, "nodeSelector", {}),
	"hostNetwork": object.get(spec, "hostNetwork", false),
	"hostPID": object.get(spec, "hostPID", false),
	"hostIPC": object.get(spec, "hostIPC", false),
	"containers": [container(c) | some c in object.get(spec, "containers", [])],
	"initContainers": [container(c) | some c in object.get(spec, "initContainers", [])],
}

container(c) := {
	"name": c.name,
	"image": object.get(c, "image", ""),
	"privileged": object.get(c, ["securityContext", "privileged"], false) == true,
	"extendedResources": extended_resources(c),
}

# max(request, limit) of each extended resource (a name with a "/"), as input.go computes it.
extended_resources(c) := {name: max(values) |
	some list in ["requests", "limits"]
	some name, _ in object.get(c, ["resources", list], {})
	contains(name, "/")
	values := {ceil(units.parse(q)) |
		some l in ["requests", "limits"]
		q := object.get(c, ["resources", l, name], "0")
	}
}

decision := d if {
	d := data.runtimeguard.decision with input as {
		"operation": request.operation,
		"namespace": namespace,
		"pod": pod,
		"cluster": data.bench.cluster,
	}
}

enforcement := "warn" if namespace.labels["runtimeguard.io/enforcement"] == "warn"

else := "enforce"

response := object.union(
	{"uid": request.uid, "allowed": true, "auditAnnotations": audit},
	patch,
) if reviewed

else := {"uid": request.uid, "allowed": true, "auditAnnotations": {"decision": "allowed"}}

inject if {
	pod.runtimeClassName == ""
	decision.class != ""
	enforcement == "enforce"
}

patch := {
	"patchType": "JSONPatch",
	"patch": base64.encode(json.marshal([{"op": "add", "path": "/spec/runtimeClassName", "value": decision.class}])),
} if inject

else := {}

audit := object.union(
	{"decision": outcome, "reasons": concat("; ", decision.reasons), "enforcement": enforcement},
	{"class": decision.class | decision.class != ""},
)

outcome := "mutated" if inject

else := "allowed"

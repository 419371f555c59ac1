package policy

import "fmt"

// Decision is what the policy decided for one Pod (the document data.runtimeguard.decision).
type Decision struct {
	// Class is the RuntimeClass the Pod must get when it names none; "" for no requirement or
	// when no available class meets it (then Deny says why).
	Class string `json:"class"`
	// Acceptable holds every class that meets the Pod's requirements.
	Acceptable []string `json:"acceptable"`
	// Deny and Warn are messages from policy rules.
	Deny []string `json:"deny"`
	Warn []string `json:"warn"`
	// Reasons explain the decision in sentences.
	Reasons []string `json:"reasons"`
	// Traits maps each trait the Pod has to where it came from.
	Traits       map[string][]string `json:"traits"`
	Requirements Requirements        `json:"requirements"`
	// Conflicts are the keys where the named class's scheduling.nodeSelector contradicts the
	// Pod's nodeSelector (the policy's selector_conflicts): the Rego finds them, Go words the denial.
	Conflicts []Conflict `json:"conflicts"`

	// perNode: see PerNode.
	perNode bool
}

// Conflict is one nodeSelector key the class and the Pod want different values for.
type Conflict struct {
	Key        string `json:"key"`
	ClassValue string `json:"class_value"`
	PodValue   string `json:"pod_value"`
}

// Requirements is what the Pod's traits need from its runtime.
type Requirements struct {
	Isolation int  `json:"isolation"`
	GPU       bool `json:"gpu"`
}

// parseDecision turns the policy's result into a Decision, refusing anything that does not
// have the documented shape: a malformed decision is an error, never a silent allow.
func parseDecision(v any) (*Decision, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("data.runtimeguard.decision is %s, want an object", typeName(v))
	}
	d := &Decision{Traits: map[string][]string{}}
	var err error
	if d.Class, err = stringField(obj, "decision", "class"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		key string
		dst *[]string
	}{{"acceptable", &d.Acceptable}, {"deny", &d.Deny}, {"warn", &d.Warn}, {"reasons", &d.Reasons}} {
		if *f.dst, err = stringList(obj, f.key); err != nil {
			return nil, err
		}
	}
	if t, ok := obj["traits"]; ok {
		traits, ok := t.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("decision.traits is %s, want an object", typeName(t))
		}
		for name := range traits {
			if d.Traits[name], err = stringList(traits, name); err != nil {
				return nil, fmt.Errorf("decision.traits: %w", err)
			}
		}
	}
	if r, ok := obj["requirements"].(map[string]any); ok {
		if n, ok := r["isolation"].(interface{ Int64() (int64, error) }); ok {
			i, _ := n.Int64()
			d.Requirements.Isolation = int(i)
		}
		d.Requirements.GPU, _ = r["gpu"].(bool)
	}
	if d.Conflicts, err = conflictList(obj); err != nil {
		return nil, err
	}
	return d, nil
}

// conflictList reads decision.conflicts; a missing key (a policy of its own) is none.
func conflictList(obj map[string]any) ([]Conflict, error) {
	v, ok := obj["conflicts"]
	if !ok || v == nil {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("decision.conflicts is %s, want an array", typeName(v))
	}
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]Conflict, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("decision.conflicts holds %s, want objects", typeName(it))
		}
		var c Conflict
		var err error
		for _, f := range []struct {
			key string
			dst *string
		}{{"key", &c.Key}, {"class_value", &c.ClassValue}, {"pod_value", &c.PodValue}} {
			if *f.dst, err = stringField(m, "decision.conflicts[]", f.key); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// stringField reads obj[key], a string; where names obj in errors ("decision").
func stringField(obj map[string]any, where, key string) (string, error) {
	v, ok := obj[key]
	if !ok {
		return "", fmt.Errorf("%s.%s is missing", where, key)
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s.%s is %s, want a string", where, key, typeName(v))
	}
	return s, nil
}

// stringList reads a set or array of strings; a missing key is an empty list.
func stringList(obj map[string]any, key string) ([]string, error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return nil, nil
	}
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("decision.%s is %s, want a set or array of strings", key, typeName(v))
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("decision.%s holds %s, want strings", key, typeName(it))
		}
		out = append(out, s)
	}
	return out, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	default:
		return "a number"
	}
}

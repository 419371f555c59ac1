package harness

import (
	"testing"
)

func TestParseClusterView(t *testing.T) {
	const metrics = `# HELP runtimeguard_runtimeclass_available 1 when runtimeguard counts the RuntimeClass as available (what admission decides with), 0 otherwise.
# TYPE runtimeguard_runtimeclass_available gauge
runtimeguard_runtimeclass_available{runtimeclass="gvisor"} 1
runtimeguard_runtimeclass_available{runtimeclass="gvisor-nvidia"} 1
runtimeguard_runtimeclass_available{runtimeclass="kata"} 0
runtimeguard_runtimeclass_available{runtimeclass="nvidia"} 1
# HELP runtimeguard_runtimeclass_usable_nodes Nodes a Pod of the RuntimeClass can be scheduled to.
# TYPE runtimeguard_runtimeclass_usable_nodes gauge
runtimeguard_runtimeclass_usable_nodes{handler="kata-qemu",runtimeclass="kata"} 0
runtimeguard_runtimeclass_usable_nodes{handler="nvidia",runtimeclass="nvidia"} 1
runtimeguard_runtimeclass_usable_nodes{handler="runsc",runtimeclass="gvisor"} 1
runtimeguard_runtimeclass_usable_nodes{handler="runsc-nvidia",runtimeclass="gvisor-nvidia"} 1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
`
	v, err := ParseClusterView(metrics)
	if err != nil {
		t.Fatal(err)
	}
	want := StandardView()
	want["kata"] = ClassState{Handler: "kata-qemu", Usable: 0, Available: false}
	if !v.Equal(want) {
		t.Errorf("view %s\nwant %s", v, want)
	}
	if v.Equal(StandardView()) {
		t.Errorf("a view with kata unavailable equals the standard view")
	}
	empty, err := ParseClusterView("# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 1\n")
	if err != nil || len(empty) != 0 {
		t.Errorf("a view before sync: %v %v, want empty", empty, err)
	}
	if got := empty.String(); got != "(no RuntimeClass: the view is not synced or empty)" {
		t.Errorf("String of an empty view: %q", got)
	}
	if _, err := ParseClusterView("not metrics {"); err == nil {
		t.Error("garbage parsed")
	}
}

func TestNodeSpecMatches(t *testing.T) {
	for _, spec := range StandardNodes() {
		if !spec.Matches(spec.Object()) {
			t.Errorf("%s does not match its own object", spec.Name)
		}
		for name, change := range map[string]func(*NodeSpec){
			"NotReady": func(s *NodeSpec) { s.NotReady = true },
			"cordoned": func(s *NodeSpec) { s.Cordoned = true },
			"handlers": func(s *NodeSpec) { s.Handlers = append(s.Handlers, "spin") },
			"labels":   func(s *NodeSpec) { s.Labels = map[string]string{"x": "y"} },
			"taints":   func(s *NodeSpec) { s.Taints = nil },
		} {
			changed := spec
			changed.Labels = nil
			for k, v := range spec.Labels {
				if changed.Labels == nil {
					changed.Labels = map[string]string{}
				}
				changed.Labels[k] = v
			}
			changed.Handlers = append([]string(nil), spec.Handlers...)
			change(&changed)
			if name == "taints" && len(spec.Taints) == 0 {
				continue
			}
			if spec.Matches(changed.Object()) {
				t.Errorf("%s matches itself %s", spec.Name, name)
			}
		}
	}
}

func TestSumMetric(t *testing.T) {
	const metrics = `# HELP runtimeguard_admissions_total Admission reviews answered.
# TYPE runtimeguard_admissions_total counter
runtimeguard_admissions_total{outcome="allowed",webhook="validate"} 3
runtimeguard_admissions_total{outcome="denied",webhook="validate"} 2
runtimeguard_admissions_total{outcome="mutated",webhook="mutate"} 7
# HELP runtimeguard_policy_stale 1 when stale.
# TYPE runtimeguard_policy_stale gauge
runtimeguard_policy_stale 1
`
	for _, tc := range []struct {
		name  string
		match map[string]string
		want  float64
	}{
		{"runtimeguard_admissions_total", nil, 12},
		{"runtimeguard_admissions_total", map[string]string{"webhook": "validate"}, 5},
		{"runtimeguard_admissions_total", map[string]string{"webhook": "mutate", "outcome": "mutated"}, 7},
		{"runtimeguard_admissions_total", map[string]string{"webhook": "none"}, 0},
		{"runtimeguard_policy_stale", nil, 1},
		{"runtimeguard_missing", nil, 0},
	} {
		got, err := SumMetric(metrics, tc.name, tc.match)
		if err != nil || got != tc.want {
			t.Errorf("SumMetric(%s, %v) = %v, %v; want %v", tc.name, tc.match, got, err, tc.want)
		}
	}
}

package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
)

func TestInventoryCommand(t *testing.T) {
	noKubeconfig(t)
	tests := []struct {
		name string
		args []string
		code int
		want []string // in order
	}{
		{
			name: "example cluster",
			args: []string{"inventory", "--cluster", fixtureCluster},
			code: 0,
			want: []string{
				"3 nodes, 3 report status.runtimeHandlers\n",
				"RUNTIMECLASS   HANDLER       GPU  BY STATUS  BY LABELS  READY  SCHEDULABLE  USABLE  AVAILABLE  SOURCE\n",
				"gvisor         runsc         -    1          0          1      1            1       yes        status\n",
				"gvisor-nvidia  runsc-nvidia  yes  1          0          1      1            1       yes        status\n",
				"kata           kata-qemu     -    1          0          1      1            1       yes        status\n",
				"nvidia         nvidia        yes  1          0          1      1            1       yes        status\n",
				"1 drift finding:\n",
				`shared-selector        label nvidia.com/gpu.present=true is the scheduling.nodeSelector of gvisor-nvidia (handler "runsc-nvidia"), nvidia (handler "nvidia")`,
			},
		},
		{
			name: "drift fixture: every kind",
			args: []string{"inventory", "--cluster", "testdata/cluster/drift.yaml"},
			code: 0,
			want: []string{
				"5 nodes, 4 report status.runtimeHandlers\n",
				"gvisor        runsc      -    2          0          2      1            1       yes        status\n",
				"kata          kata-qemu  -    1          1          1      1            1       yes        status\n",
				"kata-clh      kata-clh   -    0          1          0      0            0       no         none\n",
				"nvidia        nvidia     yes  1          0          1      1            1       yes        status\n",
				"wasm          spin       -    0          0          0      0            0       no         none\n",
				"5 drift findings:\n",
				`class-unrunnable       RuntimeClass "kata-clh": no Ready, schedulable node advertises handler "kata-clh" (0 of 5 nodes; 1 match scheduling.nodeSelector katacontainers.io/kata-runtime=true but report status.runtimeHandlers without "kata-clh"; 1 advertise it but are NotReady)`,
				`class-unrunnable       RuntimeClass "wasm": no Ready, schedulable node advertises handler "spin" (0 of 5 nodes; 1 report no runtime handlers and lack labels runtime.example.com/spin=true)`,
				`label-drift            node kata-1 is labelled katacontainers.io/kata-runtime=true (RuntimeClass "kata-clh"'s scheduling.nodeSelector) but status.runtimeHandlers does not list handler "kata-clh"`,
				`shared-selector        label katacontainers.io/kata-runtime=true is the scheduling.nodeSelector of kata (handler "kata-qemu"), kata-clh (handler "kata-clh")`,
				"(2 nodes carry the label, 1 of them reports no handlers)",
				`gpu-class-unscheduled  RuntimeClass "nvidia" is a GPU class in the policy data (gpu: true) but neither its scheduling.nodeSelector nor its tolerations mention nvidia.com/gpu`,
			},
		},
		{
			name: "--fail-on-drift",
			args: []string{"inventory", "--cluster", "testdata/cluster/drift.yaml", "--fail-on-drift"},
			code: 1,
			want: []string{"5 drift findings:"},
		},
		{
			name: "no drift",
			args: []string{"inventory", "--cluster", "testdata/cluster/clean.yaml", "--fail-on-drift"},
			code: 0,
			want: []string{"1 nodes, 1 report status.runtimeHandlers", "gvisor", "No drift found.\n"},
		},
		{
			name: "GPU classes come from the policy data",
			args: []string{"inventory", "--cluster", "testdata/cluster/drift.yaml", "--policies", "testdata/no-gpu-policy"},
			code: 0,
			want: []string{"4 drift findings:"},
		},
		{
			name: "no cluster source ($KUBECONFIG names no file)",
			args: []string{"inventory"},
			code: 2,
			want: []string{"no cluster to read: give --cluster FILE... (fixtures), or a kubeconfig"},
		},
		{
			name: "bad -o",
			args: []string{"inventory", "--cluster", fixtureCluster, "-o", "wide"},
			code: 2,
			want: []string{`invalid argument "wide" for "-o, --output" flag: want table, json or yaml`},
		},
		{
			name: "a bad fixture",
			args: []string{"inventory", "--cluster", fixturePods},
			code: 2,
			want: []string{"a cluster file holds Namespaces, Nodes, RuntimeClasses, ResourceClaimTemplates and ResourceClaims, not *v1.Pod"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			all := stdout + stderr
			if code != tc.code {
				t.Errorf("exit code %d, want %d\n%s", code, tc.code, all)
			}
			wantInOrder(t, all, tc.want)
		})
	}
}

func TestInventoryJSON(t *testing.T) {
	code, stdout, stderr := runCLI(t, "inventory", "--cluster", "testdata/cluster/drift.yaml", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var inv cluster.Inventory
	if err := json.Unmarshal([]byte(stdout), &inv); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	var kinds []string
	for _, f := range inv.Findings {
		kinds = append(kinds, f.Kind+":"+strings.Join(f.RuntimeClasses, ",")+":"+strings.Join(f.Nodes, ","))
	}
	sort.Strings(kinds)
	want := []string{
		"class-unrunnable:kata-clh:", "class-unrunnable:wasm:",
		"gpu-class-unscheduled:nvidia:", "label-drift:kata-clh:kata-1", "shared-selector:kata,kata-clh:",
	}
	if strings.Join(kinds, " ") != strings.Join(want, " ") {
		t.Errorf("findings\n  %v\nwant\n  %v", kinds, want)
	}
	if len(inv.Classes) != 5 || inv.Classes[1].Name != "kata" || inv.Classes[1].AdvertisedByLabels != 1 || inv.Classes[1].Usable != 1 {
		t.Errorf("classes %+v", inv.Classes)
	}
}

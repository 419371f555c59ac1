package node

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The cleanup check must be able to fail: a process naming the run directory, and the
// directory itself, are reported.
func TestLeftoversReportsAProcessAndTheRunDirectory(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "sleep 30", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	left := Leftovers(dir, "/runtimeguard-node-test-none")
	joined := strings.Join(left, "\n")
	if len(left) != 2 || !strings.Contains(joined, "process ") || !strings.Contains(joined, "run directory left: "+dir) {
		t.Errorf("Leftovers = %q, want the sleeping process and the run directory", left)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if left := Leftovers(dir, "/runtimeguard-node-test-none"); len(left) != 0 {
		t.Errorf("Leftovers after the process exited and the directory was removed: %q, want none", left)
	}
}

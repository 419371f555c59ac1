// Package proc reads a process's CPU time and memory from /proc (Linux), so benchmarks can
// charge CPU to the server rather than trust wall-clock throughput on a shared machine.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ: 100 on every Linux architecture Go supports.
const clockTick = 100

// Stat is a point-in-time reading of one process.
type Stat struct {
	// CPU is utime+stime of all the process's threads.
	CPU time.Duration
	// RSS is VmRSS, HWM is VmHWM (peak RSS since start), in bytes.
	RSS, HWM int64
}

// Read reads pid's CPU time (from /proc/PID/stat) and memory (from /proc/PID/status).
func Read(pid int) (Stat, error) {
	var s Stat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	if len(fields) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	s.CPU = time.Duration(utime+stime) * time.Second / clockTick
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSS = kib(v)
		case "VmHWM":
			s.HWM = kib(v)
		}
	}
	return s, nil
}

func kib(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n * 1024
}

// ResetHWM resets pid's VmHWM to its current RSS (writing 5 to /proc/PID/clear_refs), so a
// peak can be measured for one phase. It reports whether the kernel allowed it.
func ResetHWM(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// MiB formats bytes as MiB with one decimal.
func MiB(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

// MachineCPU returns the CPU time all processes on the machine have used (busy: everything but
// idle and iowait), summed over CPUs, from /proc/stat.
func MachineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected format")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}

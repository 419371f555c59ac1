// Package version says which build of runtimeguard is running: `runtimeguard version`, the
// start-up log line and the runtimeguard_build_info metric all read it.
package version

import (
	"runtime"
	"runtime/debug"

	opaversion "github.com/open-policy-agent/opa/v1/version"
)

// Set at build time by the Makefile's build target and the Dockerfile:
//
//	-ldflags "-X github.com/runtimeguard/runtimeguard/version.version=v0.3.0 -X ...version.commit=<sha>"
//
// A plain `go build` or `go test` leaves them empty and Get falls back to the module's build
// information.
var (
	version string
	commit  string
)

// Info describes this build.
type Info struct {
	// Version is the release ("v0.3.0"), or "dev" for a build without -ldflags.
	Version string `json:"version"`
	// Commit is the git revision built from ("" when unknown), with "-dirty" when the tree had
	// uncommitted changes.
	Commit string `json:"commit"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"goVersion"`
	// OPAVersion is the version of the embedded OPA (the Rego evaluator).
	OPAVersion string `json:"opaVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns this build's Info.
func Get() Info {
	info := Info{
		Version:    version,
		Commit:     commit,
		GoVersion:  runtime.Version(),
		OPAVersion: opaversion.Version,
		Platform:   runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		fromBuildInfo(&info, bi)
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// fromBuildInfo fills what -ldflags did not set: `go install ...@v0.3.0` records the module
// version, and a build inside a git checkout records the revision (go build -buildvcs).
func fromBuildInfo(info *Info, bi *debug.BuildInfo) {
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	if info.Commit != "" {
		return
	}
	var revision string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if revision != "" && dirty {
		revision += "-dirty"
	}
	info.Commit = revision
}

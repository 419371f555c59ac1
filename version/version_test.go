package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	tests := []struct {
		name        string
		ldflags     Info
		bi          debug.BuildInfo
		wantVersion string
		wantCommit  string
	}{
		{
			name:        "-ldflags win over the build information",
			ldflags:     Info{Version: "v1.2.3", Commit: "abc"},
			bi:          debug.BuildInfo{Main: debug.Module{Version: "v9.9.9"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "def"}}},
			wantVersion: "v1.2.3", wantCommit: "abc",
		},
		{
			name:        "go install @version records the module version",
			bi:          debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}},
			wantVersion: "v0.4.0",
		},
		{
			name:       "a build in a dirty checkout records the revision, marked dirty",
			bi:         debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}},
			wantCommit: "0123abcd-dirty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := tt.ldflags
			fromBuildInfo(&info, &tt.bi)
			if info.Version != tt.wantVersion || info.Commit != tt.wantCommit {
				t.Errorf("got version %q commit %q, want %q %q", info.Version, info.Commit, tt.wantVersion, tt.wantCommit)
			}
		})
	}
}

func TestGet(t *testing.T) {
	info := Get()
	if info.Version != "dev" {
		t.Errorf("Version = %q in a test binary built without -ldflags, want dev", info.Version)
	}
	if !strings.HasPrefix(info.GoVersion, "go1.") {
		t.Errorf("GoVersion = %q, want go1.x", info.GoVersion)
	}
	if info.OPAVersion == "" || info.Platform == "" {
		t.Errorf("OPAVersion %q, Platform %q: want both set", info.OPAVersion, info.Platform)
	}
}

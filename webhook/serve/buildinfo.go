package serve

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runtimeguard/runtimeguard/version"
)

// newBuildInfo is runtimeguard_build_info, the usual constant 1 whose labels say which build
// runs: a dashboard or an alert joins on it to tell replicas of different versions apart.
func newBuildInfo(info version.Info) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "runtimeguard_build_info",
		Help: "Constant 1, labelled with the version, git revision and Go version of the running binary.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(info.Version, info.Commit, info.GoVersion).Set(1)
	return g
}

package harness

import (
	"github.com/runtimeguard/runtimeguard/e2e/controlplane"
	"github.com/runtimeguard/runtimeguard/e2e/tools"
)

// SuiteControlPlane is the control plane the e2e suite starts (TestMain adds its CRDs and
// log directory).
var SuiteControlPlane = controlplane.Options{ControllerManager: true, Scheduler: true}

// SuiteTools are the paths of the tools the e2e scenarios run themselves.
type SuiteTools struct {
	Kubectl, Helm, CertManagerLite string
}

// ResolveSuiteTools resolves every tool the e2e suite runs (the control plane's, helm for
// RenderChart and `helm install`, kubectl, cert-manager-lite) before any starts, so that one
// `make e2e` does not build fails at once. Its dry run is checked against what `make e2e`
// builds (TestMakeE2EBuildsEveryToolTheSuiteResolves).
func ResolveSuiteTools(r *tools.Resolver) (SuiteTools, error) {
	var t SuiteTools
	if _, err := r.Dir(SuiteControlPlane.Binaries()...); err != nil {
		return t, err
	}
	var err error
	for name, path := range map[string]*string{ChartTool: &t.Helm, "kubectl": &t.Kubectl, "cert-manager-lite": &t.CertManagerLite} {
		if *path, err = r.Path(name); err != nil {
			return t, err
		}
	}
	return t, nil
}

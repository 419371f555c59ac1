package cluster

import (
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Kubeconfig selects the API server as kubectl does: --kubeconfig, else $KUBECONFIG (a list
// of files, merged), else ~/.kube/config, else the in-cluster service account; --context picks
// a context other than the current one. serve, inventory and explain share it.
type Kubeconfig struct {
	// Path is the kubeconfig file (--kubeconfig, "" = $KUBECONFIG, ~/.kube/config, in-cluster).
	Path string
	// Context is the kubeconfig context to use (--context, "" = its current-context).
	Context string
}

// AddFlags registers --kubeconfig and --context.
func (k *Kubeconfig) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&k.Path, "kubeconfig", k.Path, "kubeconfig file (empty: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account)")
	fs.StringVar(&k.Context, "context", k.Context, "kubeconfig context to use (empty: the current context)")
}

func (k *Kubeconfig) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.Path
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.Context}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// Namespace is the namespace kubectl would act on without -n: the context's, the in-cluster
// service account's, or "default".
func (k *Kubeconfig) Namespace() (string, error) {
	ns, _, err := k.clientConfig().Namespace()
	return ns, err
}

// RESTConfig resolves the API server's address and credentials.
func (k *Kubeconfig) RESTConfig() (*rest.Config, error) {
	cfg, err := k.clientConfig().ClientConfig()
	if err != nil {
		return nil, err
	}
	// client-go's defaults (5 requests/s) throttle an informer start on a large cluster;
	// these are controller-runtime's (ctrl.GetConfig), which serve used before.
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 20, 30
	}
	return cfg, nil
}

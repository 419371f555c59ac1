package serve

import (
	"context"
	"maps"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/runtimeguard/runtimeguard/webhook/cluster"
	"github.com/runtimeguard/runtimeguard/webhook/native"
)

// NativeParamsOptions say whether serve keeps the native admission policies' parameter
// ConfigMap (runtimeguard generate native) current.
type NativeParamsOptions struct {
	Enabled bool
	// LeaseName is the Lease, in --webhook-namespace, that elects the writing replica.
	LeaseName string
}

// DefaultNativeParamsOptions is off: only clusters that run the native policies need it.
func DefaultNativeParamsOptions() NativeParamsOptions {
	return NativeParamsOptions{LeaseName: "runtimeguard-native-params"}
}

// AddFlags registers the --native-params* flags.
func (o *NativeParamsOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Enabled, "native-params", o.Enabled, "keep ConfigMap "+native.ParamsName+" in --webhook-namespace current: each RuntimeClass's availability, as the native admission policies (runtimeguard generate native) read it; one replica writes, elected through a Lease")
	fs.StringVar(&o.LeaseName, "native-params-lease-name", o.LeaseName, "name of the Lease in --webhook-namespace that elects the replica writing "+native.ParamsName)
}

// paramsKeeper writes the parameter ConfigMap from this replica's cluster view while it holds
// its Lease: at once, a debounce after the view changes (a rollout relabels many nodes in a
// burst), and every resync in case someone edited or deleted it.
type paramsKeeper struct {
	namespace string
	client    kubernetes.Interface
	view      *cluster.View
	election  election
	log       logr.Logger
	// poll is how often the view's generation is checked, debounce how long it must stay
	// unchanged before a write, resync how often the ConfigMap is checked regardless.
	poll, debounce, resync time.Duration
}

var (
	_ manager.Runnable               = (*paramsKeeper)(nil)
	_ manager.LeaderElectionRunnable = (*paramsKeeper)(nil)
)

func newParamsKeeper(o NativeParamsOptions, namespace string, client kubernetes.Interface, view *cluster.View, log logr.Logger) *paramsKeeper {
	return &paramsKeeper{
		namespace: namespace, client: client, view: view, log: log,
		election: newElection(client, namespace, o.LeaseName),
		poll:     250 * time.Millisecond, debounce: 500 * time.Millisecond, resync: time.Minute,
	}
}

// NeedLeaderElection is false: the keeper elects itself through its own Lease (election).
func (k *paramsKeeper) NeedLeaderElection() bool { return false }

// Start campaigns for the Lease until ctx ends, writing while it holds it.
func (k *paramsKeeper) Start(ctx context.Context) error {
	return k.election.run(ctx, k.lead, func() {})
}

func (k *paramsKeeper) lead(ctx context.Context) {
	k.log.Info("this replica keeps the native policies' parameters", "configmap", k.namespace+"/"+native.ParamsName, "identity", k.election.identity)
	poll := time.NewTicker(k.poll)
	defer poll.Stop()
	resync := time.NewTicker(k.resync)
	defer resync.Stop()
	var written uint64 // the snapshot generation last written; 0: none yet
	due := true
	var settle <-chan time.Time
	for {
		if due && k.view.Synced() {
			gen := k.view.Snapshot().Generation
			if err := k.write(ctx); err != nil {
				k.log.Error(err, "writing the native policies' parameters; retrying")
				settle = time.After(k.debounce)
			} else {
				written = gen
			}
			due = false
		}
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
			due = true
		case <-poll.C:
			if gen := k.view.Snapshot().Generation; gen != written && settle == nil {
				settle = time.After(k.debounce)
			}
		case <-settle:
			settle, due = nil, true
		}
	}
}

// write makes the ConfigMap say what the view says, touching it only when it differs.
func (k *paramsKeeper) write(ctx context.Context) error {
	want := native.Params(k.namespace, native.Availability(k.view.Snapshot()))
	cms := k.client.CoreV1().ConfigMaps(k.namespace)
	got, err := cms.Get(ctx, native.ParamsName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			k.log.Info("native policies' parameters created", "available", want.Data)
		}
		return err
	case err != nil:
		return err
	case maps.Equal(got.Data, want.Data):
		return nil
	}
	got.Data = want.Data
	if _, err := cms.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		return err
	}
	k.log.Info("native policies' parameters updated", "available", want.Data)
	return nil
}

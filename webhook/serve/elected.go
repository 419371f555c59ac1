package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// election is one background job's own Lease. The manager's leader election is not used: it
// makes every runnable that does not opt out wait for leadership, and it ends the process when
// the lease is lost (an API server outage longer than the renew deadline would restart every
// webhook replica that led). Here only the job is elected; losing the lease stops it, and the
// replica campaigns again.
type election struct {
	client    kubernetes.Interface
	namespace string
	lease     string
	identity  string
	// lease timings (client-go's defaults).
	leaseDuration, renewDeadline, retryPeriod time.Duration
}

func newElection(client kubernetes.Interface, namespace, lease string) election {
	host, _ := os.Hostname()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return election{
		client: client, namespace: namespace, lease: lease, identity: host + "_" + hex.EncodeToString(suffix),
		leaseDuration: 15 * time.Second, renewDeadline: 10 * time.Second, retryPeriod: 2 * time.Second,
	}
}

// run campaigns until ctx ends, running lead while this replica holds the Lease; stopped runs
// each time it loses it.
func (e election) run(ctx context.Context, lead func(context.Context), stopped func()) error {
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: e.namespace, Name: e.lease},
				Client:     e.client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: e.identity},
			},
			LeaseDuration:   e.leaseDuration,
			RenewDeadline:   e.renewDeadline,
			RetryPeriod:     e.retryPeriod,
			ReleaseOnCancel: true,
			Name:            e.lease,
			Callbacks:       leaderelection.LeaderCallbacks{OnStartedLeading: lead, OnStoppedLeading: stopped},
		})
		if err != nil {
			return fmt.Errorf("leader election on Lease %s/%s: %w", e.namespace, e.lease, err)
		}
		le.Run(ctx)
	}
	return nil
}

package node

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cri talks to containerd's CRI over its socket in the run directory, as the kubelet does: the
// harness needs only readiness, the image list and sandbox removal, so a CRI client replaces
// crictl (one less tool to build cold).
type cri struct {
	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
}

func dialCRI(sock string) (*cri, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI client for %s: %w", sock, err)
	}
	return &cri{conn: conn, runtime: runtimeapi.NewRuntimeServiceClient(conn), images: runtimeapi.NewImageServiceClient(conn)}, nil
}

func (c *cri) Close() error { return c.conn.Close() }

// ready returns nil once the runtime reports RuntimeReady (the kubelet waits for the same).
func (c *cri) ready(ctx context.Context) error {
	st, err := c.runtime.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return fmt.Errorf("CRI status: %w", err)
	}
	for _, cond := range st.GetStatus().GetConditions() {
		if cond.GetType() == runtimeapi.RuntimeReady {
			if cond.GetStatus() {
				return nil
			}
			return fmt.Errorf("CRI runtime not ready: %s %s", cond.GetReason(), cond.GetMessage())
		}
	}
	return errors.New("CRI status has no RuntimeReady condition")
}

// imageTags returns every repo tag containerd's CRI image store holds.
func (c *cri) imageTags(ctx context.Context) ([]string, error) {
	resp, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil, fmt.Errorf("CRI list images: %w", err)
	}
	var tags []string
	for _, im := range resp.GetImages() {
		tags = append(tags, im.GetRepoTags()...)
	}
	return tags, nil
}

// removeSandboxes stops and removes every Pod sandbox, which tears down their containers,
// shims and cgroups the way the runtimes mean to.
func (c *cri) removeSandboxes(ctx context.Context) error {
	resp, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("CRI list sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range resp.GetItems() {
		if _, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("stop sandbox %s: %w", sb.GetId(), err))
			continue
		}
		if _, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("remove sandbox %s: %w", sb.GetId(), err))
		}
	}
	return errors.Join(errs...)
}

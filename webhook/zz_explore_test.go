package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/certs"
)

func TestZZExplore(t *testing.T) {
	var logs bytes.Buffer
	ctrl.SetLogger(funcr.New(func(p, a string) { fmt.Fprintln(&logs, p, a) }, funcr.Options{Verbosity: 10}))
	dir := t.TempDir()
	dc, err := certs.WriteDevCerts(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir, TLSOpts: []func(*tls.Config){TLSOptions}})
	a := newAdmitter(t, setup{})
	srv.Register(MutatePath, bodyDeadline(&admission.Webhook{Handler: admission.HandlerFunc(a.Mutate), RecoverPanic: ptr.To(true)}))
	srv.Register(ValidatePath, bodyDeadline(&admission.Webhook{Handler: admission.HandlerFunc(a.Validate), RecoverPanic: ptr.To(true)}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Start(ctx)
	time.Sleep(500 * time.Millisecond)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: dc.CertPool()}}}
	base := readReview(t, "untrusted-no-class.json")
	bodies := map[string][]byte{
		"trunc":       base[:len(base)/2],
		"wrongver":    bytes.Replace(base, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v2"`), 1),
		"wrongkind":   bytes.Replace(base, []byte(`"kind": "AdmissionReview"`), []byte(`"kind": "Pod"`), 1),
		"nokind":      bytes.Replace(bytes.Replace(base, []byte(`"kind": "AdmissionReview",`), nil, 1), []byte(`"apiVersion": "admission.k8s.io/v1",`), nil, 1),
		"v1beta1":     bytes.Replace(base, []byte(`"admission.k8s.io/v1"`), []byte(`"admission.k8s.io/v1beta1"`), 1),
		"nouid":       bytes.Replace(base, []byte(`"uid": "3f1c2e5a-8d4b-4f6e-9a0c-1b2d3e4f5a6b",`), nil, 1),
		"deep10k":     bytes.Replace(base, []byte(`"status": {}`), []byte(`"status": {}, "x": `+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)), 1),
		"deep9999":    bytes.Replace(base, []byte(`"status": {}`), []byte(`"status": {}, "x": `+strings.Repeat("[", 9990)+strings.Repeat("]", 9990)), 1),
		"deep100k":    bytes.Replace(base, []byte(`"status": {}`), []byte(`"status": {}, "x": `+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)), 1),
		"badutf8":     bytes.Replace(base, []byte(`"team": "payments-platform"`), []byte("\"team\": \"pay\xff\xfements\""), 1),
		"dupkey":      bytes.Replace(base, []byte(`"namespace": "tenant-a",`), []byte(`"namespace": "tenant-a", "namespace": "kube-system",`), 1),
		"quantityobj": bytes.Replace(base, []byte(`"memory": "1Gi"`), []byte(`"nvidia.com/gpu": {"token": "SECRETSECRET"}`), 1),
		"oversize":    bytes.Replace(base, []byte(`"status": {}`), []byte(`"status": {}, "x": "`+strings.Repeat("a", 8<<20)+`"`), 1),
		"cm":          bytes.Replace(base, []byte(`"kind": "Pod",
      "metadata"`), []byte(`"kind": "ConfigMap", "data": {"password": "SECRETSECRET"},
      "metadata"`), 1),
	}
	for name, b := range bodies {
		for _, p := range []string{MutatePath} {
			logs.Reset()
			req, _ := http.NewRequest("POST", fmt.Sprintf("https://127.0.0.1:%d%s", port, p), bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				t.Logf("%s: %v", name, err)
				continue
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(out) > 600 {
				out = out[:600]
			}
			t.Logf("%s %s: %d %s\nLOGS: %.800s", name, p, resp.StatusCode, out, logs.String())
		}
	}
}

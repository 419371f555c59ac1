package harness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestSecretSyncWritesLikeASecretVolume(t *testing.T) {
	ctx := context.Background()
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "tls"},
		Data:       map[string][]byte{"tls.crt": []byte("cert-1"), "tls.key": []byte("key-1"), "ca.crt": []byte("ca")},
	}
	c := fake.NewClientBuilder().WithObjects(secret).Build()
	dir := filepath.Join(t.TempDir(), "certs")
	s, err := StartSecretSync(ctx, c, types.NamespacedName{Namespace: "ns", Name: "tls"}, dir, 5*time.Second, "tls.crt", "tls.key")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	if read("tls.crt") != "cert-1" || read("tls.key") != "key-1" || read("ca.crt") != "ca" {
		t.Fatalf("files after start: %q %q %q", read("tls.crt"), read("tls.key"), read("ca.crt"))
	}
	if target, err := os.Readlink(filepath.Join(dir, "tls.crt")); err != nil || target != "..data/tls.crt" {
		t.Fatalf("tls.crt is not a symlink into ..data: %q %v", target, err)
	}
	firstTS, _ := os.Readlink(filepath.Join(dir, "..data"))

	changed := s.Changed()
	secret.Data = map[string][]byte{"tls.crt": []byte("cert-2"), "tls.key": []byte("key-2")}
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(3 * time.Second):
		t.Fatal("the Secret update was not written")
	}
	if read("tls.crt") != "cert-2" || read("tls.key") != "key-2" {
		t.Fatalf("files after update: %q %q", read("tls.crt"), read("tls.key"))
	}
	if _, err := os.Lstat(filepath.Join(dir, "ca.crt")); !os.IsNotExist(err) {
		t.Errorf("ca.crt left behind after the key was removed from the Secret: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, firstTS)); !os.IsNotExist(err) {
		t.Errorf("previous version %s not removed: %v", firstTS, err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if n, _ := s.Writes(); n != 2 || len(names) != 4 || !strings.HasPrefix(names[0], "..2") {
		t.Errorf("after 2 versions: %d writes, directory %v", n, names)
	}
}

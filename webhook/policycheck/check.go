// Package policycheck is the validating webhook that checks a ConfigMap holding runtimeguard
// policy before the API server stores it: the policy it makes must load and compile, its data
// must match the built-in policy's schema (for a layer), and the suites (*.suite.yaml) shipped
// in it must pass. A broken policy is then refused at `kubectl apply`, with file:line, instead
// of reaching the replicas, which would keep their last good policy (or, starting, stay
// NotReady) and only say so in their logs and metrics.
package policycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/runtimeguard/runtimeguard/policies/suite"
	"github.com/runtimeguard/runtimeguard/webhook"
	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// Path is where serve answers the check.
const Path = "/validate-policy-configmap"

// RoleLabel says a ConfigMap holds runtimeguard policy, and how the server uses it: the chart's
// webhook selects ConfigMaps that carry it.
const RoleLabel = "runtimeguard.io/policy"

const (
	// RoleLayer is a ConfigMap mounted as a --policy-modules directory: its .rego modules are
	// added to the server's base policy and its data files merged over the base's data.
	RoleLayer = "layer"
	// RoleReplace is a ConfigMap mounted as a --policies directory: the whole policy.
	RoleReplace = "replace"
)

// maxMessage bounds the denial message: the API server passes it to the client whole.
const maxMessage = 4000

// Checker checks policy ConfigMaps. It only reads the request: no API access is needed.
type Checker struct {
	// BaseDirs are the server's --policies directories, which a layer is put on; none: the
	// built-in policy. (The server's own layers are not added: the ConfigMap being checked is
	// usually one of them.)
	BaseDirs []string
}

// Handle implements admission.Handler.
func (c *Checker) Handle(ctx context.Context, req admission.Request) admission.Response {
	var cm corev1.ConfigMap
	if err := json.Unmarshal(req.Object.Raw, &cm); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the ConfigMap: %w", err))
	}
	name := cm.Name
	if name == "" {
		name = req.Name
	}
	role, ok := cm.Labels[RoleLabel]
	if !ok { // the webhook's objectSelector sends only labelled ConfigMaps
		return admission.Allowed("")
	}
	if err := c.Check(ctx, role, cm.Data, cm.BinaryData); err != nil {
		msg := fmt.Sprintf("runtimeguard policy ConfigMap %s/%s (%s=%s) is broken, so it was not stored: %v", req.Namespace, name, RoleLabel, role, err)
		if len(msg) > maxMessage {
			msg = msg[:maxMessage] + "... (truncated)"
		}
		return admission.Denied(msg)
	}
	return admission.Allowed("the policy loads, compiles and passes the suites it ships")
}

// Check builds the policy a ConfigMap with this role and these files makes, as serve would,
// and runs the suites among the files against it. Errors name the ConfigMap key (file) and
// line.
func (c *Checker) Check(ctx context.Context, role string, files map[string]string, binary map[string][]byte) error {
	switch role {
	case RoleLayer, RoleReplace:
	default:
		return fmt.Errorf("label %s=%q: want %q (modules and data added to the built-in policy, as serve --policy-modules) or %q (the whole policy, as serve --policies)", RoleLabel, role, RoleLayer, RoleReplace)
	}
	if len(binary) > 0 {
		keys := make([]string, 0, len(binary))
		for k := range binary {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Errorf("binaryData keys %s: runtimeguard reads policy files from data only; move them there", strings.Join(keys, ", "))
	}
	dir, err := os.MkdirTemp("", "policycheck-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var suites []string
	for key, content := range files {
		// The API server allows only [-._a-zA-Z0-9] in keys: no path can leave dir.
		p := filepath.Join(dir, key)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return err
		}
		if strings.HasSuffix(key, suite.Suffix) {
			suites = append(suites, p)
		}
	}
	sort.Strings(suites)
	clean := func(err error) error { return errors.New(relative(err.Error(), dir)) }

	o := webhook.Options{PolicyDirs: []string{dir}}
	if role == RoleLayer {
		o = webhook.Options{PolicyDirs: c.BaseDirs, PolicyModuleDirs: []string{dir}}
	}
	set, err := o.LoadPolicies()
	if err != nil {
		return clean(err)
	}
	if _, err := policy.Compile(ctx, set); err != nil {
		return clean(err)
	}
	if len(suites) == 0 {
		return nil
	}
	var out bytes.Buffer
	r := suite.RunWith(ctx, &out, suites, suite.Options{Policy: set})
	if r.Failed == 0 && r.Broken == 0 {
		return nil
	}
	var report []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "PASS ") {
			report = append(report, line)
		}
	}
	return clean(fmt.Errorf("the suites it ships fail:\n%s", strings.Join(report, "\n")))
}

// relative drops the temporary directory from paths in msg, leaving the ConfigMap's keys.
func relative(msg, dir string) string {
	msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
	return strings.ReplaceAll(msg, dir, "the ConfigMap")
}

// Package certs provides the webhook's TLS serving certificates when
// cert-manager does not.
//
// Two jobs:
//
//   - WriteDevCerts / DevCerts.Rotate write a throw-away CA and serving
//     certificate into a directory for `make dev-certs`, the e2e suite and
//     benchmarks. Rotate re-issues the serving certificate under the same CA,
//     so a caBundle registered once stays valid while the certificate
//     changes on disk.
//
//   - Setup (serve --self-signed-certs) makes the webhook manage its own CA
//     and serving certificate in one Secret, write them into the cert dir
//     that controller-runtime's webhook server (with certwatcher) serves
//     from, and keep the caBundle of its Mutating- and
//     ValidatingWebhookConfiguration current, with any number of replicas.
//
// Why not github.com/open-policy-agent/cert-controller (Gatekeeper's
// rotator)? v0.16.0 compiles against our controller-runtime v0.25.2, but it
// never writes the cert dir (it waits for the kubelet to project the Secret
// volume, which takes 60-90 s after each change: cert-controller issues #35,
// #50), it replaces the caBundle with the new CA at the moment it rotates the
// CA, so pods still serving the old certificate are rejected (issue #13),
// it gives every serving certificate serial number 1, and its cache watches
// every Secret in the namespace (RBAC list/watch on all of them). See
// README.md for the design that avoids those failures, and for the RBAC.
package certs

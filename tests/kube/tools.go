//go:build tools

// Package tools pins the Kubernetes control-plane commands the end-to-end tests build
// (scripts/build-kube.sh). Nothing imports it; the blank imports keep the requirements in go.mod.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)

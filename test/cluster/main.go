// Command testcluster runs a real Kubernetes control plane for crdkit's
// tests: an embedded etcd (data on tmpfs) and kube-apiserver built from the
// k8s.io/kubernetes module, optionally kube-controller-manager, all on
// 127.0.0.1 with TLS and RBAC. It writes kubeconfigs for an admin
// (system:masters) and for an ordinary user with no rights, and serves a
// small control endpoint so tests can compact etcd (forcing 410 Gone),
// compact and defragment it (benchmarks, between jobs) or restart the
// apiserver.
//
//	testcluster up [--dir D] [--controller-manager [--controllers LIST]] [--log-dir L]
//
// The apiserver and controller-manager run as child processes of this same
// binary (subcommands "apiserver" and "controller-manager"), so the
// apiserver can be restarted on the same port while etcd keeps its data.
// SIGTERM or SIGINT stops everything and removes D.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	// Called as "kubectl" (a symlink made by scripts/testenv): be kubectl,
	// of the same release as the apiserver.
	if filepath.Base(os.Args[0]) == "kubectl" {
		runKubectl()
		return
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "apiserver":
		cmd := apiserver.NewAPIServerCommand()
		cmd.SetArgs(os.Args[2:])
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
	case "controller-manager":
		cmd := kcm.NewControllerManagerCommand()
		cmd.SetArgs(os.Args[2:])
		if err := cmd.Execute(); err != nil {
			os.Exit(1)
		}
	case "kubectl":
		os.Args = os.Args[1:]
		runKubectl()
	case "up":
		os.Exit(runUp(os.Args[2:]))
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "testcluster: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: testcluster up [--dir DIR] [--controller-manager [--controllers LIST]] [--log-dir DIR]
       testcluster kubectl ARGS...   (also when invoked as "kubectl")

Runs etcd + kube-apiserver (and optionally kube-controller-manager) on
127.0.0.1 until SIGTERM/SIGINT, then removes DIR. When ready it writes
DIR/env with KUBECONFIG=..., CRDKIT_TEST_USER_KUBECONFIG=...,
CRDKIT_TEST_CONTROL=http://127.0.0.1:PORT (POST /compact, POST /defrag,
POST /apiserver/restart, POST /apiserver/stop, POST /apiserver/start).
`)
}

func runKubectl() {
	command := kubectl.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
}

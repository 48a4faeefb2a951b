// The controller-runtime peer of `crdkit aws-auth run`: AWSAuth objects of
// WATCH_NAMESPACE merged into CONFIGMAP_NAMESPACE/CONFIGMAP_NAME.
package main

import (
	"flag"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1alpha1 "crdkit/bench/peers/controller-runtime/api/v1alpha1"
	"crdkit/bench/peers/controller-runtime/internal/controller"
)

var setupLog = ctrl.Log.WithName("setup")

// bindAddress turns a port from the environment into a bind address;
// unset, empty or 0 means off.
func bindAddress(env string) string {
	p := os.Getenv(env)
	if p == "" || p == "0" {
		return "0"
	}
	return ":" + p
}

func requireEnv(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fmt.Fprintf(os.Stderr, "%s must be set\n", name)
		os.Exit(2)
	}
	return v
}

func main() {
	opts := zap.Options{} // production settings: JSON, info level, stderr
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	watchNamespace := requireEnv("WATCH_NAMESPACE")
	target := types.NamespacedName{
		Namespace: requireEnv("CONFIGMAP_NAMESPACE"),
		Name:      requireEnv("CONFIGMAP_NAME"),
	}
	probeAddr := bindAddress("HEALTH_PORT")

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: bindAddress("METRICS_PORT")},
		HealthProbeBindAddress: probeAddr,
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{watchNamespace: {}},
		},
	})
	if err != nil {
		setupLog.Error(err, "unable to create the manager")
		os.Exit(1)
	}

	if err := (&controller.AWSAuthReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Namespace: watchNamespace,
		ConfigMap: target,
	}).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "unable to create the controller")
		os.Exit(1)
	}
	if probeAddr != "0" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			setupLog.Error(err, "unable to set up the health check")
			os.Exit(1)
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			setupLog.Error(err, "unable to set up the ready check")
			os.Exit(1)
		}
	}

	setupLog.Info("starting", "namespace", watchNamespace, "configmap", target)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "manager stopped")
		os.Exit(1)
	}
}

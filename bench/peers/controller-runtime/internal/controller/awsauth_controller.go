// Package controller holds the AWSAuth reconciler: every reconcile merges all
// AWSAuth objects of the watched namespace into the target ConfigMap.
package controller

import (
	"context"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	v1alpha1 "crdkit/bench/peers/controller-runtime/api/v1alpha1"
)

const finalizerName = "crdkit.io/aws-auth-peer"

// AWSAuthReconciler reconciles AWSAuth objects of one namespace.
type AWSAuthReconciler struct {
	client.Client
	// APIReader reads the ConfigMap from the apiserver (it is not cached).
	APIReader client.Reader
	Namespace string
	ConfigMap types.NamespacedName
}

func (r *AWSAuthReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	var obj v1alpha1.AWSAuth
	if err := r.Get(ctx, req.NamespacedName, &obj); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone (possibly before its finalizer was added): merge what is left.
			return ctrl.Result{}, r.syncConfigMap(ctx)
		}
		return ctrl.Result{}, err
	}

	if obj.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(&obj, finalizerName) {
			controllerutil.AddFinalizer(&obj, finalizerName)
			if err := r.Update(ctx, &obj); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{}, r.syncConfigMap(ctx)
	}

	// Being deleted: remove its entries, then let it go.
	if !controllerutil.ContainsFinalizer(&obj, finalizerName) {
		return ctrl.Result{}, nil
	}
	if err := r.syncConfigMap(ctx); err != nil {
		return ctrl.Result{}, err
	}
	controllerutil.RemoveFinalizer(&obj, finalizerName)
	if err := r.Update(ctx, &obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log.Info("entries removed", "awsauth", req.NamespacedName)
	return ctrl.Result{}, nil
}

// merge returns the entries of all AWSAuth objects that are not being
// deleted, sorted by ARN (then by object name, for duplicates).
func merge(items []v1alpha1.AWSAuth) ([]v1alpha1.RoleMapping, []v1alpha1.UserMapping) {
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	roles := []v1alpha1.RoleMapping{}
	users := []v1alpha1.UserMapping{}
	for i := range items {
		if !items[i].DeletionTimestamp.IsZero() {
			continue
		}
		roles = append(roles, items[i].Spec.MapRoles...)
		users = append(users, items[i].Spec.MapUsers...)
	}
	sort.SliceStable(roles, func(i, j int) bool { return roles[i].RoleARN < roles[j].RoleARN })
	sort.SliceStable(users, func(i, j int) bool { return users[i].UserARN < users[j].UserARN })
	return roles, users
}

// syncConfigMap writes the merged entries into the ConfigMap with the
// resourceVersion precondition (Update), retrying on 409 Conflict, and
// creates the ConfigMap when it does not exist. Other data keys are kept.
func (r *AWSAuthReconciler) syncConfigMap(ctx context.Context) error {
	log := logf.FromContext(ctx)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var list v1alpha1.AWSAuthList
		if err := r.List(ctx, &list, client.InNamespace(r.Namespace)); err != nil {
			return err
		}
		roles, users := merge(list.Items)
		rolesYAML, err := yaml.Marshal(roles)
		if err != nil {
			return err
		}
		usersYAML, err := yaml.Marshal(users)
		if err != nil {
			return err
		}
		want := map[string]string{"mapRoles": string(rolesYAML), "mapUsers": string(usersYAML)}

		var cm corev1.ConfigMap
		err = r.APIReader.Get(ctx, r.ConfigMap, &cm)
		if apierrors.IsNotFound(err) {
			cm = corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: r.ConfigMap.Name, Namespace: r.ConfigMap.Namespace},
				Data:       want,
			}
			if err := r.Create(ctx, &cm); err != nil {
				return err
			}
			log.Info("configmap created", "configmap", r.ConfigMap, "mapRoles", len(roles), "mapUsers", len(users))
			return nil
		}
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		if cm.Data["mapRoles"] == want["mapRoles"] && cm.Data["mapUsers"] == want["mapUsers"] {
			return nil
		}
		for k, v := range want {
			cm.Data[k] = v
		}
		// Update carries metadata.resourceVersion: a concurrent write gives 409.
		if err := r.Update(ctx, &cm); err != nil {
			return err
		}
		log.Info("configmap updated", "configmap", r.ConfigMap, "mapRoles", len(roles), "mapUsers", len(users))
		return nil
	})
}

// SetupWithManager registers the controller: AWSAuth events only.
func (r *AWSAuthReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.AWSAuth{}).
		Named("awsauth").
		Complete(r)
}

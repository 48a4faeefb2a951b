// Package v1alpha1 is a hand-written typed API for AWSAuth (crdkit.io/v1alpha1),
// reduced to what the peer reads: the spec. Status is not modelled (the peer
// writes none).
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	GroupVersion  = schema.GroupVersion{Group: "crdkit.io", Version: "v1alpha1"}
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	AddToScheme   = SchemeBuilder.AddToScheme
)

func init() {
	SchemeBuilder.Register(&AWSAuth{}, &AWSAuthList{})
}

// RoleMapping is one entry of aws-auth's mapRoles.
type RoleMapping struct {
	RoleARN  string   `json:"rolearn"`
	Username string   `json:"username,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// UserMapping is one entry of aws-auth's mapUsers.
type UserMapping struct {
	UserARN  string   `json:"userarn"`
	Username string   `json:"username,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// AWSAuthSpec holds exactly one of MapRoles and MapUsers (the CRD enforces it).
type AWSAuthSpec struct {
	MapRoles []RoleMapping `json:"mapRoles,omitempty"`
	MapUsers []UserMapping `json:"mapUsers,omitempty"`
}

type AWSAuth struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AWSAuthSpec `json:"spec,omitempty"`
}

type AWSAuthList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AWSAuth `json:"items"`
}

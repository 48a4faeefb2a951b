package v1alpha1

import "k8s.io/apimachinery/pkg/runtime"

// Written by hand: what controller-gen would generate for these types.

func (in *RoleMapping) DeepCopyInto(out *RoleMapping) {
	*out = *in
	if in.Groups != nil {
		out.Groups = append([]string(nil), in.Groups...)
	}
}

func (in *UserMapping) DeepCopyInto(out *UserMapping) {
	*out = *in
	if in.Groups != nil {
		out.Groups = append([]string(nil), in.Groups...)
	}
}

func (in *AWSAuthSpec) DeepCopyInto(out *AWSAuthSpec) {
	*out = *in
	if in.MapRoles != nil {
		out.MapRoles = make([]RoleMapping, len(in.MapRoles))
		for i := range in.MapRoles {
			in.MapRoles[i].DeepCopyInto(&out.MapRoles[i])
		}
	}
	if in.MapUsers != nil {
		out.MapUsers = make([]UserMapping, len(in.MapUsers))
		for i := range in.MapUsers {
			in.MapUsers[i].DeepCopyInto(&out.MapUsers[i])
		}
	}
}

func (in *AWSAuth) DeepCopyInto(out *AWSAuth) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
}

func (in *AWSAuth) DeepCopy() *AWSAuth {
	if in == nil {
		return nil
	}
	out := new(AWSAuth)
	in.DeepCopyInto(out)
	return out
}

func (in *AWSAuth) DeepCopyObject() runtime.Object {
	return in.DeepCopy()
}

func (in *AWSAuthList) DeepCopyInto(out *AWSAuthList) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AWSAuth, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

func (in *AWSAuthList) DeepCopy() *AWSAuthList {
	if in == nil {
		return nil
	}
	out := new(AWSAuthList)
	in.DeepCopyInto(out)
	return out
}

func (in *AWSAuthList) DeepCopyObject() runtime.Object {
	return in.DeepCopy()
}

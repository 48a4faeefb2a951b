/* The AWSAuth CRD table (crdkit.io/v1alpha1). */
#ifndef AWSAUTH_CRD_H
#define AWSAUTH_CRD_H

#include "crdkit/crd.h"

extern const ck_crd_t awsauth_crd;

#endif

/* The AWSAuth CustomResourceDefinition, as a table: `crdkit aws-auth
 * --print-crd` and `--create-crd` generate it, deploy/aws-auth/crd.yaml is
 * its output (a test checks they are equal). */
#include "awsauth_crd.h"

/* Bounds keep the objects and the CEL cost small: aws-auth as a whole is
 * limited to 1 MiB, and the authenticator reads every entry on each
 * change. */
#define ARN_MAX 2048
#define NAME_MAX_LEN 256
#define GROUPS_MAX 32
#define ENTRIES_MAX 200

/* Shared by role and user entries (a macro: C initialisers of static
 * tables cannot copy another object). */
#define GROUPS_FIELD                                                                               \
  { \
    .name = "groups", \
    .type = CK_CRD_ARRAY, \
    .description = "Kubernetes groups the principal is a member of. Templates such as " \
                   "{{SessionName}} are allowed. Mapping to system:masters grants full " \
                   "control of the cluster.", \
    .max_items = CK_CRD_INT(GROUPS_MAX), \
    .list_type = CK_CRD_LIST_ATOMIC, \
    .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, \
                                     .description = "A Kubernetes group name.", \
                                     .min_length = CK_CRD_INT(1), \
                                     .max_length = CK_CRD_INT(NAME_MAX_LEN)}, \
}

static const ck_crd_field_t role_fields[] = {
    {.name = "rolearn",
     .type = CK_CRD_STRING,
     .required = true,
     .description = "ARN of the IAM role, e.g. arn:aws:iam::111122223333:role/admin. A path "
                    "is removed (the authenticator compares ARNs without it) and an STS "
                    "assumed-role ARN is turned into its role ARN; status.warnings says so.",
     .min_length = CK_CRD_INT(1),
     .max_length = CK_CRD_INT(ARN_MAX)},
    {.name = "username",
     .type = CK_CRD_STRING,
     .description = "Kubernetes user name for the role, e.g. system:node:{{EC2PrivateDNSName}} "
                    "for nodes or admin:{{SessionName}}.",
     .max_length = CK_CRD_INT(NAME_MAX_LEN)},
    GROUPS_FIELD,
    {0},
};

static const ck_crd_field_t user_fields[] = {
    {.name = "userarn",
     .type = CK_CRD_STRING,
     .required = true,
     .description = "ARN of the IAM user, e.g. arn:aws:iam::111122223333:user/alice.",
     .min_length = CK_CRD_INT(1),
     .max_length = CK_CRD_INT(ARN_MAX)},
    {.name = "username",
     .type = CK_CRD_STRING,
     .description = "Kubernetes user name for the IAM user.",
     .max_length = CK_CRD_INT(NAME_MAX_LEN)},
    GROUPS_FIELD,
    {0},
};

static const ck_crd_field_t spec_fields[] = {
    {.name = "mapRoles",
     .type = CK_CRD_ARRAY,
     .description = "IAM roles to map, merged into aws-auth's mapRoles. Exactly one of "
                    "mapRoles and mapUsers is set.",
     .min_items = CK_CRD_INT(1),
     .max_items = CK_CRD_INT(ENTRIES_MAX),
     .list_type = CK_CRD_LIST_ATOMIC,
     .items = &(const ck_crd_field_t){.type = CK_CRD_OBJECT,
                                      .description = "One role mapping.",
                                      .fields = role_fields}},
    {.name = "mapUsers",
     .type = CK_CRD_ARRAY,
     .description = "IAM users to map, merged into aws-auth's mapUsers. Exactly one of "
                    "mapRoles and mapUsers is set.",
     .min_items = CK_CRD_INT(1),
     .max_items = CK_CRD_INT(ENTRIES_MAX),
     .list_type = CK_CRD_LIST_ATOMIC,
     .items = &(const ck_crd_field_t){.type = CK_CRD_OBJECT,
                                      .description = "One user mapping.",
                                      .fields = user_fields}},
    {.name = "deletionPolicy",
     .type = CK_CRD_STRING,
     .description = "What happens to the entries when this object is deleted: Delete removes "
                    "them from aws-auth, Retain leaves them there (they become foreign "
                    "entries the operator no longer manages).",
     .default_json = "\"Delete\"",
     .enum_values = CK_CRD_LIST("Delete", "Retain")},
    {.name = "suspend",
     .type = CK_CRD_BOOLEAN,
     .description = "Stop applying changes of this object; its entries stay as last written.",
     .default_json = "false"},
    {.name = "takeOver",
     .type = CK_CRD_BOOLEAN,
     .description = "Take over entries for the same ARNs that already exist in aws-auth and "
                    "that no AWSAuth manages. Off by default: such foreign entries win and this "
                    "object is reported Conflicted.",
     .default_json = "false"},
    {0},
};

static const ck_crd_field_t condition_fields[] = {
    {.name = "type", .type = CK_CRD_STRING, .required = true,
     .description = "Ready, Invalid, Conflicted, Degraded or Suspended.",
     .max_length = CK_CRD_INT(316)},
    {.name = "status", .type = CK_CRD_STRING, .required = true,
     .description = "True, False or Unknown.",
     .enum_values = CK_CRD_LIST("True", "False", "Unknown")},
    {.name = "reason", .type = CK_CRD_STRING, .required = true,
     .description = "A CamelCase reason for the last transition.",
     .max_length = CK_CRD_INT(1024)},
    {.name = "message", .type = CK_CRD_STRING, .description = "Details for people.",
     .max_length = CK_CRD_INT(32768)},
    {.name = "lastTransitionTime", .type = CK_CRD_STRING, .required = true,
     .format = "date-time", .description = "When status last changed."},
    {.name = "observedGeneration", .type = CK_CRD_INTEGER,
     .description = "The metadata.generation the condition was computed from.",
     .minimum = CK_CRD_NUM(0)},
    {0},
};

static const ck_crd_field_t status_fields[] = {
    {.name = "observedGeneration", .type = CK_CRD_INTEGER,
     .description = "The metadata.generation last reconciled.", .minimum = CK_CRD_NUM(0)},
    {.name = "type", .type = CK_CRD_STRING, .description = "mapRoles or mapUsers."},
    {.name = "entries", .type = CK_CRD_INTEGER,
     .description = "Entries of this object present in aws-auth."},
    {.name = "conditions", .type = CK_CRD_ARRAY,
     .description = "Ready, Invalid, Conflicted, Degraded and Suspended, with "
                    "metav1.Condition semantics.",
     .list_type = CK_CRD_LIST_MAP, .list_map_keys = CK_CRD_LIST("type"),
     .max_items = CK_CRD_INT(8),
     .items = &(const ck_crd_field_t){.type = CK_CRD_OBJECT, .description = "A condition.",
                                      .fields = condition_fields}},
    {.name = "arns", .type = CK_CRD_ARRAY,
     .description = "The ARNs as written to aws-auth, after normalisation.",
     .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, .description = "An ARN."}},
    {.name = "warnings", .type = CK_CRD_ARRAY,
     .description = "What the operator changed or noticed, e.g. a role path removed.",
     .items = &(const ck_crd_field_t){.type = CK_CRD_STRING, .description = "A warning."}},
    {0},
};

const ck_crd_t awsauth_crd = {
    .group = "crdkit.io",
    .kind = "AWSAuth",
    .plural = "awsauths",
    .singular = "awsauth",
    .scope = CK_CRD_NAMESPACED,
    .categories = CK_CRD_LIST("crdkit"),
    .versions = (const ck_crd_version_t[]){
        {.name = "v1alpha1",
         .served = true,
         .storage = true,
         .description = "AWSAuth maps IAM roles or users to Kubernetes users and groups by "
                        "merging its entries into the kube-system/aws-auth ConfigMap, keeping "
                        "every entry it does not own.",
         .spec = &(const ck_crd_field_t){
             .type = CK_CRD_OBJECT,
             .required = true,
             .description = "The mappings: exactly one of mapRoles and mapUsers.",
             .fields = spec_fields,
             .rules = (const ck_crd_rule_t[]){
                 {.rule = "has(self.mapRoles) != has(self.mapUsers)",
                  .message = "exactly one of mapRoles and mapUsers must be set"},
                 {0}}},
         .status = &(const ck_crd_field_t){.type = CK_CRD_OBJECT,
                                           .description = "What the operator observed and did.",
                                           .fields = status_fields},
         .columns = (const ck_crd_column_t[]){
             {.name = "Type", .type = "string", .json_path = ".status.type",
              .description = "mapRoles or mapUsers"},
             {.name = "Entries", .type = "integer", .json_path = ".status.entries",
              .description = "Entries present in aws-auth"},
             {.name = "Ready", .type = "string",
              .json_path = ".status.conditions[?(@.type==\"Ready\")].status",
              .description = "Whether every entry is in aws-auth"},
             {.name = "Age", .type = "date", .json_path = ".metadata.creationTimestamp"},
             {0}},
         .status_subresource = true},
        {0}},
};

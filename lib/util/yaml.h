/* YAML -> JSON (jansson) conversion with explicit scalar resolution rules
 * and hard bounds, for every YAML input crdkit reads (kubeconfig, aws-auth
 * data, manifests). Private to the library.
 *
 * Aliases are shared references; their expanded size counts against
 * max_nodes, so alias bombs fail fast. Recursive aliases are rejected.
 */
#ifndef CK_UTIL_YAML_H
#define CK_UTIL_YAML_H

#include "crdkit/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum ck_yaml_schema {
  /* YAML 1.2 core schema: true/false, null/~, decimal/0o/0x ints. */
  CK_YAML_CORE = 0,
  /* YAML 1.1 as sigs.k8s.io/yaml (go-yaml v2) resolves it, which is what
   * kubectl and aws-iam-authenticator use: yes/no/on/off/y/n are booleans,
   * a leading 0 means octal, 0b binary, underscores in numbers. */
  CK_YAML_11,
} ck_yaml_schema_t;

typedef struct ck_yaml_opts {
  ck_yaml_schema_t schema;
  size_t max_nodes;   /* 0: 1,000,000 (counting alias expansions) */
  int max_depth;      /* 0: 100 */
  bool multi_doc;     /* true: *out is an array of documents */
  bool allow_dup_keys; /* true: the last duplicate wins; false: error */
} ck_yaml_opts_t;

/* Convert `len` bytes of YAML. On success *out is a new reference (caller
 * json_decref's it); an empty single document gives JSON null. On failure
 * returns CK_EINVAL or CK_ETOOBIG (or CK_ENOMEM) and err->message says
 * "line L, column C: what". `opts` may be NULL. */
int ck_yaml_to_json(const char *data, size_t len, const ck_yaml_opts_t *opts, json_t **out,
                    ck_error_t *err);

/* Resolve a plain (unquoted) scalar per `schema`. Returns a new reference. */
json_t *ck_yaml_resolve_plain(const char *s, size_t len, ck_yaml_schema_t schema);

#endif

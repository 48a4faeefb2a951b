/* The aws-auth operator: the reconciler that drives the pure core
 * (awsauth.h) with the controller runtime, and the offline commands. */
#ifndef AA_OPERATOR_H
#define AA_OPERATOR_H

#include "awsauth.h"

#include "crdkit/error.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct aa_run_opts {
  const char *kubeconfig; /* NULL: KUBECONFIG, ~/.kube/config, in-cluster */
  const char *context;
  const char *const *namespaces; /* where AWSAuth objects are honoured; NULL: kube-system */
  size_t nnamespaces;
  bool all_namespaces;
  const char *configmap_ns;   /* NULL: kube-system */
  const char *configmap_name; /* NULL: aws-auth */
  bool create_crd;
  bool dry_run;               /* log the diff, write nothing */
  bool no_create_configmap;   /* refuse to create aws-auth when absent */
  aa_drift_mode_t drift;
  int max_removals;           /* 0: AA_DEFAULT_MAX_REMOVALS; < 0: unlimited */
  int history;                /* revisions kept in <name>-history; 0: 10 */
  bool leader_elect;
  const char *metrics_addr, *probe_addr; /* NULL: :8080 / :8081; "0": off */
} aa_run_opts_t;

/* Run until SIGTERM/SIGINT. Returns 0 after a graceful stop, else a
 * CK_E* code with err naming what failed. */
int aa_operator_run(const aa_run_opts_t *o, ck_error_t *err);

/* The CRD as YAML on `out`. */
int aa_print_crd(FILE *out, ck_error_t *err);

/* Offline: merge the AWSAuth objects found in `paths` (files or
 * directories of YAML, multi-document) into `live_path`'s ConfigMap (NULL:
 * none) and print the resulting ConfigMap YAML on `out`; object problems
 * go to `diag`. Returns 0, 1 when an object is invalid or conflicted or
 * the merge is blocked (CI should fail), or a negative CK_E* code. */
int aa_render(const char *const *paths, size_t npaths, const char *live_path, FILE *out,
              FILE *diag, ck_error_t *err);

/* Put revision `revision` (0: the newest) of <name>-history back into the
 * ConfigMap's mapRoles/mapUsers. Lists the revisions when `list`. */
int aa_restore(const aa_run_opts_t *o, int revision, bool list, FILE *out, ck_error_t *err);

/* The sequence of a key "rev-<digits>" of the history ConfigMap, or -1
 * for any other key (anyone can edit that ConfigMap: other keys are kept
 * as they are, and neither counted nor offered as revisions). */
long aa_history_rev(const char *k);

#endif

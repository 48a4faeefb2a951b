/* Shared by the benchmark programs (bench/). */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include "crdkit/client.h"

#include <stddef.h>

/* Monotonic seconds. */
double bench_now_s(void);

/* ck_object_list_each callback counting items into a long. */
int bench_count_item(void *ctx, json_t *item);

/* A client from the usual kubeconfig (KUBECONFIG, ~/.kube/config,
 * in-cluster) with default options; NULL after printing why on stderr,
 * prefixed with `prog`. Free with ck_client_free. */
ck_client_t *bench_client(const char *prog);

/* qsort comparator for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);

/* Create namespace `ns` unless it exists (errors are left to what follows). */
void bench_ensure_namespace(ck_client_t *c, const char *ns);

/* Make sure namespace `ns` holds `n` ConfigMaps matching `selector`: named
 * "<prefix>-NNNNN", labelled with `labels_json` (a JSON object), with a
 * data.payload of `payload_bytes`. Missing ones are created from 8
 * threads; failures other than AlreadyExists are reported on stderr. */
void bench_ensure_configmaps(ck_client_t *c, const char *ns, const char *selector,
                             const char *labels_json, const char *prefix, int n,
                             size_t payload_bytes);

#endif

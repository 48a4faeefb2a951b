/* crdkit/runtime_metrics.h: glue between the API client and the metrics
 * registry (lib/serve knows nothing of lib/kube, so it lives here).
 */
#ifndef CRDKIT_RUNTIME_METRICS_H
#define CRDKIT_RUNTIME_METRICS_H

#include "crdkit/client.h"
#include "crdkit/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Count the client's requests in `m`, with client-go's names:
 *   rest_client_requests_total{code,method,host}   counter, per attempt;
 *                                                  code "<error>" when no
 *                                                  answer came
 *   rest_client_request_duration_seconds{verb,host} histogram, per attempt
 * It installs the client's request observer (ck_client_set_observer),
 * replacing any other. `m` is borrowed: it must outlive the client (or the
 * observer must be removed first). Several clients may share one registry.
 * Returns 0, or CK_EINVAL when an argument is NULL or the families could
 * not be registered (`m` has one of these names with another type or
 * labels, or memory ran out). Thread-safe. */
int ck_metrics_register_client(ck_metrics_t *m, ck_client_t *c);

#ifdef __cplusplus
}
#endif
#endif

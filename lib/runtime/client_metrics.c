/* rest_client_* metrics from the client's request observer. */
#include "crdkit/runtime_metrics.h"

#include "crdkit/error.h"

#include <stdio.h>

#define REQUESTS_NAME "rest_client_requests_total"
#define REQUESTS_HELP "Number of HTTP requests, partitioned by status code, method, and host."
#define REQUESTS_LABELS "code,method,host"
#define DURATION_NAME "rest_client_request_duration_seconds"
#define DURATION_HELP "Request latency in seconds. Broken down by verb, and host."
#define DURATION_LABELS "verb,host"

/* client-go's bounds: API requests range from a millisecond to the 60 s
 * request timeout. */
static const double duration_buckets[] = {0.005, 0.025, 0.1, 0.25, 0.5, 1,
                                          2,     4,     8,   15,   30,  60};
#define NBUCKETS (sizeof duration_buckets / sizeof duration_buckets[0])

/* The registry is the context: the families are found again by name (a
 * lookup is cheap next to a request), which needs no allocation that
 * someone would have to free when the client goes. */
static void observe(void *ctx, const char *method, const char *host, int code, double seconds) {
  ck_metrics_t *m = ctx;
  char codestr[16];
  if (code > 0)
    snprintf(codestr, sizeof codestr, "%d", code);
  else
    snprintf(codestr, sizeof codestr, "<error>");
  ck_metric_t *total = ck_metrics_family(m, CK_METRIC_COUNTER, REQUESTS_NAME, REQUESTS_HELP,
                                         REQUESTS_LABELS, NULL, 0);
  ck_series_inc(ck_metric_series3(total, codestr, method, host));
  ck_metric_t *dur = ck_metrics_family(m, CK_METRIC_HISTOGRAM, DURATION_NAME, DURATION_HELP,
                                       DURATION_LABELS, duration_buckets, NBUCKETS);
  ck_series_observe(ck_metric_series2(dur, method, host), seconds);
}

int ck_metrics_register_client(ck_metrics_t *m, ck_client_t *c) {
  if (!m || !c)
    return CK_EINVAL;
  /* Create the families now, so a conflict shows here and not as
   * silently missing samples later. */
  if (!ck_metrics_family(m, CK_METRIC_COUNTER, REQUESTS_NAME, REQUESTS_HELP, REQUESTS_LABELS,
                         NULL, 0) ||
      !ck_metrics_family(m, CK_METRIC_HISTOGRAM, DURATION_NAME, DURATION_HELP, DURATION_LABELS,
                         duration_buckets, NBUCKETS))
    return CK_EINVAL;
  ck_client_set_observer(c, observe, m);
  return 0;
}

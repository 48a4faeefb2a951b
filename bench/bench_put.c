/* One ConfigMap replaced N times in a row on the real apiserver, each PUT
 * conditional on the resourceVersion the last one returned: the round trip
 * of one small write, the part of an operator's reaction that is the
 * apiserver's. The ConfigMap is created when missing.
 * usage: bench-put NAMESPACE [N] [PAYLOAD_BYTES]   (KUBECONFIG from the env)
 * Prints one JSON line: writes, p50/p90/p99/max milliseconds. */
#include "bench_util.h"
#include "crdkit/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-put NAMESPACE [N] [PAYLOAD_BYTES]\n");
    return 2;
  }
  const char *ns = argv[1];
  int n = argc > 2 ? atoi(argv[2]) : 500;
  size_t payload = argc > 3 ? (size_t)atol(argv[3]) : 200;
  if (n < 1) {
    fprintf(stderr, "bench-put: N must be at least 1\n");
    return 2;
  }
  ck_client_t *c = bench_client("bench-put");
  if (!c)
    return 1;
  ck_error_t err;
  char *text = malloc(payload + 1);
  double *lat = malloc((size_t)n * sizeof *lat);
  if (!text || !lat) {
    fprintf(stderr, "bench-put: out of memory\n");
    return 1;
  }
  memset(text, 'x', payload);
  text[payload] = '\0';
  bench_ensure_namespace(c, ns);
  json_t *cur = NULL;
  json_t *cm = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind",
                         "ConfigMap", "metadata", "name", "bench-put", "data", "v", "0");
  if (ck_object_create(c, &ck_res_configmaps, ns, cm, NULL, &cur, &err) != 0 &&
      !ck_error_is_already_exists(&err)) {
    fprintf(stderr, "create %s/bench-put: %s\n", ns, err.message);
    return 1;
  }
  json_decref(cm);
  json_decref(cur);
  if (ck_object_get(c, &ck_res_configmaps, ns, "bench-put", NULL, &cur, &err) != 0) {
    fprintf(stderr, "get %s/bench-put: %s\n", ns, err.message);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    char v[32];
    snprintf(v, sizeof v, "%d", i);
    json_t *data = json_pack("{s:s, s:s}", "v", v, "payload", text);
    json_object_set_new(cur, "data", data);
    json_t *out = NULL;
    double t0 = bench_now_s();
    if (ck_object_replace(c, &ck_res_configmaps, ns, "bench-put", cur, NULL, &out, &err) != 0) {
      fprintf(stderr, "replace %s/bench-put (write %d): %s\n", ns, i, err.message);
      return 1;
    }
    lat[i] = (bench_now_s() - t0) * 1e3;
    json_decref(cur);
    cur = out;
  }
  json_decref(cur);
  qsort(lat, (size_t)n, sizeof *lat, bench_cmp_double);
  printf("{\"bench\":\"put\",\"writes\":%d,\"payload\":%zu,\"p50_ms\":%.2f,\"p90_ms\":%.2f,"
         "\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
         n, payload, lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100], lat[n - 1]);
  free(lat);
  free(text);
  ck_client_free(c);
  return 0;
}

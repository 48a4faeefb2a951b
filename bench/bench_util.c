#include "bench_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_count_item(void *ctx, json_t *item) {
  (void)item;
  (*(long *)ctx)++;
  return 0;
}

typedef struct job {
  ck_client_t *c;
  const char *ns, *prefix;
  json_t *labels;
  const char *payload;
  int from, to;
} job_t;

static void *create_range(void *arg) {
  job_t *j = arg;
  for (int i = j->from; i < j->to; i++) {
    char name[128];
    snprintf(name, sizeof name, "%s-%05d", j->prefix, i);
    json_t *cm = json_pack("{s:s,s:s,s:{s:s,s:O},s:{s:s}}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", name, "labels", j->labels, "data",
                           "payload", j->payload);
    ck_error_t err;
    if (ck_object_create(j->c, &ck_res_configmaps, j->ns, cm, NULL, NULL, &err) != 0 &&
        !ck_error_is_already_exists(&err))
      fprintf(stderr, "create %s: %s\n", name, err.message);
    json_decref(cm);
  }
  return NULL;
}

ck_client_t *bench_client(const char *prog) {
  ck_error_t err;
  ck_config_t *cfg;
  ck_client_t *c = NULL;
  if (ck_config_load(NULL, &cfg, &err) != 0) {
    fprintf(stderr, "%s: %s\n", prog, err.message);
    return NULL;
  }
  if (ck_client_new(cfg, NULL, &c, &err) != 0) {
    fprintf(stderr, "%s: %s\n", prog, err.message);
    c = NULL;
  }
  ck_config_free(cfg);
  return c;
}

int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void bench_ensure_namespace(ck_client_t *c, const char *ns) {
  json_t *nso = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                          "metadata", "name", ns);
  ck_object_create(c, &ck_res_namespaces, NULL, nso, NULL, NULL, NULL);
  json_decref(nso);
}

void bench_ensure_configmaps(ck_client_t *c, const char *ns, const char *selector,
                             const char *labels_json, const char *prefix, int n,
                             size_t payload_bytes) {
  bench_ensure_namespace(c, ns);
  long have = 0;
  ck_list_opts_t lo = {.label_selector = selector};
  ck_object_list_each(c, &ck_res_configmaps, ns, &lo, bench_count_item, &have, NULL, NULL);
  if (have >= n)
    return;
  fprintf(stderr, "creating %d ConfigMaps in %s...\n", n, ns);
  char *payload = malloc(payload_bytes + 1);
  json_t *labels = json_loads(labels_json, 0, NULL);
  if (!payload || !labels) {
    fprintf(stderr, "bench: out of memory or bad labels %s\n", labels_json);
    free(payload);
    json_decref(labels);
    return;
  }
  memset(payload, 'x', payload_bytes);
  payload[payload_bytes] = '\0';
  pthread_t th[8];
  job_t jobs[8];
  for (int t = 0; t < 8; t++) {
    jobs[t] = (job_t){c, ns, prefix, labels, payload, n * t / 8, n * (t + 1) / 8};
    pthread_create(&th[t], NULL, create_range, &jobs[t]);
  }
  for (int t = 0; t < 8; t++)
    pthread_join(th[t], NULL);
  free(payload);
  json_decref(labels);
}

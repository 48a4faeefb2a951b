/* Listing N objects with ck_object_list_each (pages of 500) on the real
 * apiserver; the objects are created first when missing.
 * usage: bench-list NAMESPACE [N] [ROUNDS]   (KUBECONFIG from the env)
 * Prints one JSON line: objects, seconds per full list, peak RSS. */
#include "crdkit/client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct job {
  ck_client_t *c;
  const char *ns;
  int from, to;
} job_t;

static void *create_range(void *arg) {
  job_t *j = arg;
  char value[1024];
  memset(value, 'x', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  for (int i = j->from; i < j->to; i++) {
    char name[64];
    snprintf(name, sizeof name, "bench-%05d", i);
    json_t *cm = json_pack("{s:s,s:s,s:{s:s,s:{s:s}},s:{s:s}}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", name, "labels", "bench", "list",
                           "data", "payload", value);
    ck_error_t err;
    if (ck_object_create(j->c, &ck_res_configmaps, j->ns, cm, NULL, NULL, &err) != 0 &&
        !ck_error_is_already_exists(&err))
      fprintf(stderr, "create %s: %s\n", name, err.message);
    json_decref(cm);
  }
  return NULL;
}

static int count(void *ctx, json_t *item) {
  (void)item;
  (*(long *)ctx)++;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-list NAMESPACE [N] [ROUNDS]\n");
    return 2;
  }
  const char *ns = argv[1];
  int n = argc > 2 ? atoi(argv[2]) : 5000;
  int rounds = argc > 3 ? atoi(argv[3]) : 5;
  ck_error_t err;
  ck_config_t *cfg;
  ck_client_t *c;
  if (ck_config_load(NULL, &cfg, &err) || ck_client_new(cfg, NULL, &c, &err)) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  ck_config_free(cfg);
  json_t *nsobj = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                            "metadata", "name", ns);
  ck_object_create(c, &ck_res_namespaces, NULL, nsobj, NULL, NULL, &err);
  json_decref(nsobj);
  ck_list_opts_t lo = {.label_selector = "bench=list"};
  long have = 0;
  ck_object_list_each(c, &ck_res_configmaps, ns, &lo, count, &have, NULL, &err);
  if (have < n) {
    pthread_t th[8];
    job_t jobs[8];
    for (int t = 0; t < 8; t++) {
      jobs[t] = (job_t){c, ns, n * t / 8, n * (t + 1) / 8};
      pthread_create(&th[t], NULL, create_range, &jobs[t]);
    }
    for (int t = 0; t < 8; t++)
      pthread_join(th[t], NULL);
  }
  double best = 1e9, total = 0;
  long got = 0;
  for (int r = 0; r < rounds; r++) {
    got = 0;
    double t0 = now_s();
    if (ck_object_list_each(c, &ck_res_configmaps, ns, &lo, count, &got, NULL, &err) != 0) {
      fprintf(stderr, "list: %s\n", err.message);
      return 1;
    }
    double dt = now_s() - t0;
    total += dt;
    if (dt < best)
      best = dt;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"bench\":\"list\",\"objects\":%ld,\"rounds\":%d,\"best_s\":%.4f,\"mean_s\":%.4f,"
         "\"objects_per_s\":%.0f,\"peak_rss_kb\":%ld}\n",
         got, rounds, best, total / rounds, (double)got / best, ru.ru_maxrss);
  ck_client_free(c);
  return got >= n ? 0 : 1;
}

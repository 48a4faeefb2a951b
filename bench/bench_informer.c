/* An informer syncing N ConfigMaps of about 2 KB on the real apiserver,
 * every object going through a handler into a work queue drained by one
 * worker (informer + queue, as a controller uses them). The objects are
 * created first when missing.
 * usage: bench-informer NAMESPACE [N] [MODE]   MODE: paginated|watchlist
 * Prints one JSON line: seconds to sync, seconds until the worker had
 * every key, RSS growth, cached bytes, and RSS growth per cached byte. */
#include "crdkit/informer.h"
#include "crdkit/workqueue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
  ck_client_t *c;
  const char *ns;
  int from, to;
} job_t;

static void *create_range(void *arg) {
  job_t *j = arg;
  char value[1800];
  memset(value, 'x', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  for (int i = j->from; i < j->to; i++) {
    char name[64];
    snprintf(name, sizeof name, "inf-%05d", i);
    json_t *cm = json_pack("{s:s,s:s,s:{s:s,s:{s:s,s:s}},s:{s:s}}", "apiVersion", "v1", "kind",
                           "ConfigMap", "metadata", "name", name, "labels", "bench", "informer",
                           "app.kubernetes.io/name", "crdkit-bench", "data", "payload", value);
    ck_error_t err;
    if (ck_object_create(j->c, &ck_res_configmaps, j->ns, cm, NULL, NULL, &err) != 0 &&
        !ck_error_is_already_exists(&err))
      fprintf(stderr, "create %s: %s\n", name, err.message);
    json_decref(cm);
  }
  return NULL;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kb;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ck_queue_t *queue;
static atomic_long processed;

static void on_event(void *ctx, ck_informer_event_t ev, const json_t *old, const json_t *obj) {
  (void)ctx;
  (void)ev;
  (void)old;
  const char *ns = json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
  const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
  char key[256];
  snprintf(key, sizeof key, "%s/%s", ns ? ns : "", name ? name : "");
  ck_queue_add(queue, key);
}

static void *worker(void *arg) {
  (void)arg;
  char *key;
  while (ck_queue_get(queue, -1, &key) == 0) {
    atomic_fetch_add(&processed, 1);
    ck_queue_done(queue, key);
    free(key);
  }
  return NULL;
}

static int count(void *ctx, json_t *item) {
  (void)item;
  (*(long *)ctx)++;
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-informer NAMESPACE [N] [paginated|watchlist]\n");
    return 2;
  }
  const char *ns = argv[1];
  int n = argc > 2 ? atoi(argv[2]) : 10000;
  bool wl = argc > 3 && strcmp(argv[3], "watchlist") == 0;
  ck_error_t err = {0};
  ck_config_t *cfg = NULL;
  ck_client_t *c = NULL;
  if (ck_config_load(&(ck_config_opts_t){0}, &cfg, &err) != 0 ||
      ck_client_new(cfg, &(ck_client_opts_t){.request_timeout_ms = 300000}, &c, &err) != 0) {
    fprintf(stderr, "bench-informer: %s\n", err.message);
    return 1;
  }
  json_t *nso = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "Namespace",
                          "metadata", "name", ns);
  ck_object_create(c, &ck_res_namespaces, NULL, nso, NULL, NULL, NULL);
  json_decref(nso);
  long have = 0;
  ck_list_opts_t lo = {.label_selector = "bench=informer"};
  ck_object_list_each(c, &ck_res_configmaps, ns, &lo, count, &have, NULL, NULL);
  if (have < n) {
    fprintf(stderr, "creating %d ConfigMaps in %s...\n", n, ns);
    pthread_t t[8];
    job_t jobs[8];
    for (int i = 0; i < 8; i++) {
      jobs[i] = (job_t){c, ns, n * i / 8, n * (i + 1) / 8};
      pthread_create(&t[i], NULL, create_range, &jobs[i]);
    }
    for (int i = 0; i < 8; i++)
      pthread_join(t[i], NULL);
  }

  ck_queue_new(&(ck_queue_opts_t){.name = "bench", .qps = -1}, &queue);
  pthread_t w;
  pthread_create(&w, NULL, worker, NULL);
  long rss0 = rss_kb();
  const char *nss[1] = {ns};
  ck_informer_opts_t io = {.namespaces = nss, .nnamespaces = 1, .label_selector = "bench=informer",
                           .list_mode = wl ? CK_LIST_WATCHLIST : CK_LIST_PAGINATED};
  ck_informer_t *inf = NULL;
  ck_informer_new(c, &ck_res_configmaps, &io, &inf, &err);
  ck_informer_add_handler(inf, on_event, NULL);
  double t0 = now_s();
  ck_informer_start(inf);
  if (ck_informer_wait_synced(inf, 600000) != 0) {
    fprintf(stderr, "bench-informer: no sync in 600 s\n");
    return 1;
  }
  double t_sync = now_s() - t0;
  size_t cached = ck_informer_len(inf);
  while (atomic_load(&processed) < (long)cached)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  double t_drain = now_s() - t0;
  long rss1 = rss_kb();
  ck_informer_stats_t st;
  ck_informer_get_stats(inf, &st);
  double per_obj = (double)st.bytes / (double)(cached ? cached : 1);
  printf("{\"bench\":\"informer\",\"mode\":\"%s\",\"objects\":%zu,\"sync_s\":%.3f,"
         "\"drained_s\":%.3f,\"events_per_s\":%.0f,\"rss_growth_kb\":%ld,\"cached_bytes\":%zu,"
         "\"bytes_per_object\":%.0f,\"rss_per_cached_byte\":%.2f}\n",
         wl ? "watchlist" : "paginated", cached, t_sync, t_drain, (double)cached / t_drain,
         rss1 - rss0, st.bytes, per_obj, (double)(rss1 - rss0) * 1024.0 / (double)st.bytes);
  ck_queue_shutdown(queue);
  pthread_join(w, NULL);
  ck_informer_free(inf);
  ck_queue_free(queue);
  ck_client_free(c);
  ck_config_free(cfg);
  return 0;
}

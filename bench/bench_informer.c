/* An informer syncing N ConfigMaps of about 2 KB on the real apiserver,
 * every object going through a handler into a work queue drained by one
 * worker (informer + queue, as a controller uses them). The objects are
 * created first when missing.
 * usage: bench-informer NAMESPACE [N] [MODE]   MODE: paginated|watchlist
 * Prints one JSON line: seconds to sync, seconds until the worker had
 * every key, RSS growth, cached bytes, and RSS growth per cached byte. */
#include "bench_util.h"
#include "crdkit/informer.h"
#include "crdkit/workqueue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
  /* 1799 bytes of payload: ~2 KB objects. */
  bench_ensure_configmaps(c, ns, "bench=informer",
                          "{\"bench\":\"informer\",\"app.kubernetes.io/name\":\"crdkit-bench\"}",
                          "inf", n, 1799);

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
  double t0 = bench_now_s();
  ck_informer_start(inf);
  if (ck_informer_wait_synced(inf, 600000) != 0) {
    fprintf(stderr, "bench-informer: no sync in 600 s\n");
    return 1;
  }
  double t_sync = bench_now_s() - t0;
  size_t cached = ck_informer_len(inf);
  while (atomic_load(&processed) < (long)cached)
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  double t_drain = bench_now_s() - t0;
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

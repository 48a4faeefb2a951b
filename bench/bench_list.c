/* Listing N objects with ck_object_list_each (pages of 500) on the real
 * apiserver; the objects are created first when missing.
 * usage: bench-list NAMESPACE [N] [ROUNDS]   (KUBECONFIG from the env)
 * Prints one JSON line: objects, seconds per full list, peak RSS. */
#include "bench_util.h"
#include "crdkit/client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-list NAMESPACE [N] [ROUNDS]\n");
    return 2;
  }
  const char *ns = argv[1];
  int n = argc > 2 ? atoi(argv[2]) : 5000;
  int rounds = argc > 3 ? atoi(argv[3]) : 5;
  ck_client_t *c = bench_client("bench-list");
  if (!c)
    return 1;
  ck_error_t err;
  ck_list_opts_t lo = {.label_selector = "bench=list"};
  /* 1023 bytes of payload: ~1.3 KiB objects, as the published figures. */
  bench_ensure_configmaps(c, ns, "bench=list", "{\"bench\":\"list\"}", "bench", n, 1023);
  double best = 1e9, total = 0;
  long got = 0;
  for (int r = 0; r < rounds; r++) {
    got = 0;
    double t0 = bench_now_s();
    if (ck_object_list_each(c, &ck_res_configmaps, ns, &lo, bench_count_item, &got, NULL, &err) != 0) {
      fprintf(stderr, "list: %s\n", err.message);
      return 1;
    }
    double dt = bench_now_s() - t0;
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

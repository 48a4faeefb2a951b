/* Decode throughput of a recorded watch stream: the framer + event decoder
 * exactly as the watch uses them, fed in network-sized chunks.
 * usage: bench-watch-decode FILE [ROUNDS] [CHUNK]
 * Prints one JSON line: bytes, events, seconds, MB/s, events/s, peak RSS. */
#include "bench_util.h"
#include "crdkit/watch.h"
#include "kube/kube_internal.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static long events;

static int on_line(void *ctx, const char *line, size_t len) {
  (void)ctx;
  ck_watch_event_t ev;
  ck_error_t err;
  if (ck_watch_event_decode(line, len, &ev, &err) != 0) {
    fprintf(stderr, "decode: %s\n", err.message);
    return -1;
  }
  events++;
  ck_watch_event_clear(&ev);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-watch-decode FILE [ROUNDS] [CHUNK]\n");
    return 2;
  }
  int rounds = argc > 2 ? atoi(argv[2]) : 10;
  size_t chunk = argc > 3 ? (size_t)atol(argv[3]) : 16384;
  char *data;
  size_t len;
  ck_error_t err;
  if (ck_read_file(argv[1], 1u << 30, &data, &len, &err) != 0) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  double t0 = bench_now_s();
  for (int r = 0; r < rounds; r++) {
    ck_framer_t f = {.max_line = 16u << 20};
    for (size_t off = 0; off < len; off += chunk) {
      size_t n = len - off < chunk ? len - off : chunk;
      if (ck_framer_feed(&f, data + off, n, on_line, NULL) != 0)
        return 1;
    }
    ck_framer_free(&f);
  }
  double dt = bench_now_s() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"bench\":\"watch-decode\",\"bytes\":%zu,\"rounds\":%d,\"events\":%ld,\"seconds\":%.4f,"
         "\"mb_per_s\":%.1f,\"events_per_s\":%.0f,\"peak_rss_kb\":%ld,\"input_kb\":%zu}\n",
         len, rounds, events, dt, (double)len * rounds / dt / 1e6, (double)events / dt,
         ru.ru_maxrss, len / 1024);
  free(data);
  return 0;
}

/* bench/harness/mallinfo_probe.c: a diagnostic for the benchmarks, never
 * part of crdkit. Preloaded into crdkit by peerbench.py (MALLINFO=PREFIX),
 * it samples the process every 200 ms and, each time RSS reaches a new
 * high, appends one line to PREFIX.<pid>:
 *
 *   <unix time> anon=<KiB> file=<KiB> arena=<KiB> inuse=<KiB> free=<KiB> mmap=<KiB>
 *
 * anon/file: RssAnon/RssFile from /proc/self/status; then glibc's
 * mallinfo2(): arena (heap obtained from the system, all arenas), inuse
 * (allocated blocks in it), free (free blocks in it, resident or not),
 * mmap (blocks in their own mappings). The last line is the state at the
 * peak: how much of the peak is live data and how much the allocator
 * keeps free. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void read_rss(long *anon, long *file) {
  *anon = *file = 0;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "RssAnon:", 8) == 0)
      *anon = atol(line + 8);
    else if (strncmp(line, "RssFile:", 8) == 0)
      *file = atol(line + 8);
  }
  fclose(f);
}

static void *sample(void *arg) {
  (void)arg;
  const char *prefix = getenv("MALLINFO_PROBE_OUT");
  char path[4096];
  snprintf(path, sizeof path, "%s.%d", prefix ? prefix : "/tmp/mallinfo", (int)getpid());
  FILE *out = fopen(path, "w");
  if (!out)
    return NULL;
  long high = 0;
  for (;;) {
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    long anon, file;
    read_rss(&anon, &file);
    if (anon + file < high)
      continue;
    high = anon + file;
    struct mallinfo2 m = mallinfo2();
    fprintf(out, "%ld anon=%ld file=%ld arena=%zu inuse=%zu free=%zu mmap=%zu\n", (long)time(NULL),
            anon, file, m.arena / 1024, m.uordblks / 1024, m.fordblks / 1024, m.hblkhd / 1024);
    fflush(out);
  }
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, sample, NULL) == 0)
    pthread_detach(t);
}

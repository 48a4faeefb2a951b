/* ck_parallel_for: a shared counter hands out the indexes. */
#include "util/parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct job {
  size_t n;
  atomic_size_t next;
  void (*fn)(void *ctx, size_t i);
  void *ctx;
} job_t;

static void *work(void *arg) {
  job_t *j = arg;
  for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;)
    j->fn(j->ctx, i);
  return NULL;
}

void ck_parallel_for(size_t n, int width, void (*fn)(void *ctx, size_t i), void *ctx) {
  job_t j = {.n = n, .fn = fn, .ctx = ctx};
  atomic_init(&j.next, 0);
  size_t extra = width > 1 && n > 1 ? (size_t)width - 1 : 0;
  if (extra > n - 1)
    extra = n - 1;
  pthread_t *t = extra ? calloc(extra, sizeof *t) : NULL;
  size_t started = 0;
  for (; t && started < extra; started++)
    if (pthread_create(&t[started], NULL, work, &j) != 0)
      break;
  work(&j);
  for (size_t i = 0; i < started; i++)
    pthread_join(t[i], NULL);
  free(t);
}

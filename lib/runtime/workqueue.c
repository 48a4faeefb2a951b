/* The rate-limited work queue (client-go's workqueue semantics).
 *
 * One mutex guards everything. Each known key has one entry, found through
 * a chained hash table; the entry carries all of the key's state (waiting,
 * processing, timer, backoff), so an add, get or done is O(1) and a timer
 * change O(log n). Waiting keys sit in a FIFO ring, delayed ones in a
 * min-heap that one timer thread per queue drains when they come due.
 * The ring and the heap are kept at least as large as the number of
 * entries, so once an entry exists nothing can fail for want of memory,
 * not even on the timer thread. */
#include "crdkit/workqueue.h"

#include "crdkit/error.h"
#include "crdkit/log.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_HEAP SIZE_MAX
#define NS_PER_MS INT64_C(1000000)

typedef struct qent {
  struct qent *hnext;          /* hash chain */
  struct qent *pnext, *pprev;  /* list of processing entries */
  size_t heap_idx;             /* NO_HEAP unless a timer is pending */
  int64_t ready_ns;            /* when the timer fires */
  int64_t added_ns;            /* when it became dirty (queue duration) */
  int64_t started_ns;          /* when processing started (work duration) */
  uint64_t hash;
  int failures;                /* rate-limited adds since the last forget */
  bool dirty;                  /* to be handed out (in the ring unless processing) */
  bool processing;
  char key[];
} qent_t;

struct ck_queue {
  pthread_mutex_t mu;
  pthread_cond_t get_cond;   /* getters: a key was queued, or shutdown */
  pthread_cond_t idle_cond;  /* wait_idle: the last processing key finished */
  pthread_cond_t timer_cond; /* timer thread: the earliest timer changed */
  pthread_t timer;
  bool closed;  /* shut down: no more adds */
  bool stop;    /* the timer thread must exit */

  /* hash table */
  qent_t **buckets;
  size_t nbuckets; /* a power of two */
  size_t nentries;

  /* FIFO ring of waiting entries */
  qent_t **ring;
  size_t ring_cap; /* a power of two */
  size_t ring_head, ring_len;

  /* min-heap of delayed entries by ready_ns */
  qent_t **heap;
  size_t heap_cap, heap_len;

  qent_t *processing; /* doubly linked, for the scrape-time gauges */
  size_t nprocessing;
  size_t ndirty; /* waiting keys, including those to requeue on done */

  /* per-key backoff and the overall token bucket */
  int64_t base_ns, max_ns;
  double qps;
  double burst;
  double tokens;
  int64_t tokens_ns; /* when `tokens` was last brought up to date */

  /* metrics; every series may be NULL */
  char *name;
  ck_metrics_t *metrics;
  int collector;
  ck_series_t *m_depth, *m_adds, *m_queue_dur, *m_work_dur, *m_retries;
};

/* Monotonic, so a wall-clock step neither fires timers early nor stalls
 * them; the condition variables use the same clock. */
static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct timespec ns_to_ts(int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
  return ts;
}

/* Saturating, so "forever"-like delays cannot wrap around. */
static int64_t add_sat(int64_t a, int64_t b) {
  if (b > 0 && a > INT64_MAX - b)
    return INT64_MAX;
  return a + b;
}

static uint64_t hash_key(const char *s) {
  uint64_t h = UINT64_C(1469598103934665603); /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= UINT64_C(1099511628211);
  }
  return h;
}

/* ---- hash table --------------------------------------------------------- */

static qent_t *lookup(ck_queue_t *q, const char *key, uint64_t h) {
  for (qent_t *e = q->buckets[h & (q->nbuckets - 1)]; e; e = e->hnext)
    if (e->hash == h && strcmp(e->key, key) == 0)
      return e;
  return NULL;
}

static void rehash(ck_queue_t *q) {
  size_t n = q->nbuckets * 2;
  qent_t **nb = calloc(n, sizeof(qent_t *));
  if (!nb)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < q->nbuckets; i++) {
    qent_t *e = q->buckets[i];
    while (e) {
      qent_t *next = e->hnext;
      size_t b = e->hash & (n - 1);
      e->hnext = nb[b];
      nb[b] = e;
      e = next;
    }
  }
  free(q->buckets);
  q->buckets = nb;
  q->nbuckets = n;
}

/* Grow the ring to hold `need` entries, keeping FIFO order. */
static bool ring_reserve(ck_queue_t *q, size_t need) {
  if (need <= q->ring_cap)
    return true;
  size_t cap = q->ring_cap ? q->ring_cap : 64;
  while (cap < need)
    cap *= 2;
  qent_t **r = malloc(cap * sizeof(qent_t *));
  if (!r)
    return false;
  for (size_t i = 0; i < q->ring_len; i++)
    r[i] = q->ring[(q->ring_head + i) & (q->ring_cap - 1)];
  free(q->ring);
  q->ring = r;
  q->ring_cap = cap;
  q->ring_head = 0;
  return true;
}

static bool heap_reserve(ck_queue_t *q, size_t need) {
  if (need <= q->heap_cap)
    return true;
  size_t cap = q->heap_cap ? q->heap_cap * 2 : 64;
  while (cap < need)
    cap *= 2;
  qent_t **h = realloc(q->heap, cap * sizeof(qent_t *));
  if (!h)
    return false;
  q->heap = h;
  q->heap_cap = cap;
  return true;
}

/* The entry of `key`, created when missing. NULL only when out of memory. */
static qent_t *entry_get(ck_queue_t *q, const char *key) {
  uint64_t h = hash_key(key);
  qent_t *e = lookup(q, key, h);
  if (e)
    return e;
  if (!ring_reserve(q, q->nentries + 1) || !heap_reserve(q, q->nentries + 1))
    return NULL;
  size_t len = strlen(key);
  e = calloc(1, sizeof *e + len + 1);
  if (!e)
    return NULL;
  memcpy(e->key, key, len + 1);
  e->hash = h;
  e->heap_idx = NO_HEAP;
  size_t b = h & (q->nbuckets - 1);
  e->hnext = q->buckets[b];
  q->buckets[b] = e;
  q->nentries++;
  if (q->nentries > q->nbuckets)
    rehash(q);
  return e;
}

/* Free the entry once it holds no state, so the table only grows with the
 * keys in flight (and those with a backoff not yet forgotten). */
static void entry_release(ck_queue_t *q, qent_t *e) {
  if (e->dirty || e->processing || e->heap_idx != NO_HEAP || e->failures > 0)
    return;
  qent_t **pp = &q->buckets[e->hash & (q->nbuckets - 1)];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  q->nentries--;
  free(e);
}

/* ---- heap --------------------------------------------------------------- */

static void heap_set(ck_queue_t *q, size_t i, qent_t *e) {
  q->heap[i] = e;
  e->heap_idx = i;
}

static void heap_up(ck_queue_t *q, size_t i) {
  qent_t *e = q->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (q->heap[p]->ready_ns <= e->ready_ns)
      break;
    heap_set(q, i, q->heap[p]);
    i = p;
  }
  heap_set(q, i, e);
}

static void heap_down(ck_queue_t *q, size_t i) {
  qent_t *e = q->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= q->heap_len)
      break;
    if (c + 1 < q->heap_len && q->heap[c + 1]->ready_ns < q->heap[c]->ready_ns)
      c++;
    if (e->ready_ns <= q->heap[c]->ready_ns)
      break;
    heap_set(q, i, q->heap[c]);
    i = c;
  }
  heap_set(q, i, e);
}

static qent_t *heap_pop(ck_queue_t *q) {
  qent_t *top = q->heap[0];
  top->heap_idx = NO_HEAP;
  q->heap_len--;
  if (q->heap_len > 0) {
    q->heap[0] = q->heap[q->heap_len];
    heap_down(q, 0);
  }
  return top;
}

/* ---- queue state -------------------------------------------------------- */

static void update_depth(ck_queue_t *q) { ck_series_set(q->m_depth, (double)q->ring_len); }

/* Mark the entry waiting (dedupe: a no-op when it already is). A key being
 * processed is not put in the ring: done puts it there, so no two workers
 * ever hold the same key. */
static void enqueue_locked(ck_queue_t *q, qent_t *e, int64_t now) {
  if (e->dirty)
    return;
  e->dirty = true;
  e->added_ns = now;
  q->ndirty++;
  ck_series_inc(q->m_adds);
  if (e->processing)
    return;
  /* Capacity was reserved when the entry was created. */
  q->ring[(q->ring_head + q->ring_len) & (q->ring_cap - 1)] = e;
  q->ring_len++;
  update_depth(q);
  pthread_cond_signal(&q->get_cond);
}

static void add_after_locked(ck_queue_t *q, qent_t *e, int64_t delay_ns) {
  int64_t now = mono_ns();
  if (delay_ns <= 0) {
    enqueue_locked(q, e, now);
    return;
  }
  int64_t ready = add_sat(now, delay_ns);
  if (e->heap_idx != NO_HEAP) {
    if (ready >= e->ready_ns)
      return; /* the earlier timer wins */
    e->ready_ns = ready;
    heap_up(q, e->heap_idx);
  } else {
    e->ready_ns = ready;
    q->heap_len++; /* capacity reserved at entry creation */
    heap_set(q, q->heap_len - 1, e);
    heap_up(q, e->heap_idx);
  }
  if (e->heap_idx == 0)
    pthread_cond_signal(&q->timer_cond);
}

static void *timer_main(void *arg) {
  ck_queue_t *q = arg;
  pthread_mutex_lock(&q->mu);
  while (!q->stop) {
    int64_t now = mono_ns();
    while (q->heap_len > 0 && q->heap[0]->ready_ns <= now) {
      qent_t *e = heap_pop(q);
      enqueue_locked(q, e, now);
      entry_release(q, e);
    }
    if (q->heap_len == 0) {
      pthread_cond_wait(&q->timer_cond, &q->mu);
    } else {
      struct timespec ts = ns_to_ts(q->heap[0]->ready_ns);
      pthread_cond_timedwait(&q->timer_cond, &q->mu, &ts);
    }
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* ---- rate limiting ------------------------------------------------------ */

/* base * 2^exp, capped. */
static int64_t backoff_ns(const ck_queue_t *q, int exp) {
  int64_t d = q->base_ns;
  for (int i = 0; i < exp && d < q->max_ns; i++)
    d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
  return d < q->max_ns ? d : q->max_ns;
}

/* Reserve one token; the wait until it exists (tokens may go negative, as
 * with golang.org/x/time/rate's Reserve, so reservations queue up). */
static int64_t bucket_ns(ck_queue_t *q, int64_t now) {
  if (q->qps < 0)
    return 0;
  q->tokens += (double)(now - q->tokens_ns) * q->qps / 1e9;
  if (q->tokens > q->burst)
    q->tokens = q->burst;
  q->tokens_ns = now;
  q->tokens -= 1;
  if (q->tokens >= 0)
    return 0;
  double wait = -q->tokens / q->qps * 1e9;
  return wait >= 9e18 ? INT64_MAX : (int64_t)wait;
}

/* ---- metrics ------------------------------------------------------------ */

static void collect(void *ctx, ck_metrics_writer_t *w) {
  ck_queue_t *q = ctx;
  pthread_mutex_lock(&q->mu);
  int64_t now = mono_ns();
  double sum = 0, longest = 0;
  for (qent_t *e = q->processing; e; e = e->pnext) {
    double s = (double)(now - e->started_ns) / 1e9;
    sum += s;
    if (s > longest)
      longest = s;
  }
  pthread_mutex_unlock(&q->mu);
  const char *v[] = {q->name};
  ck_metrics_emit(w, CK_METRIC_GAUGE, "workqueue_unfinished_work_seconds",
                  "How many seconds of work has been done that is in progress and hasn't been "
                  "observed by work_duration.",
                  "name", v, sum);
  ck_metrics_emit(w, CK_METRIC_GAUGE, "workqueue_longest_running_processor_seconds",
                  "How many seconds has the longest running processor for workqueue been running.",
                  "name", v, longest);
}

static ck_series_t *series(ck_metrics_t *m, ck_metric_type_t type, const char *name,
                           const char *help, const char *label) {
  /* client-go's buckets: 10 ns to 10 s, one per decade. */
  static const double buckets[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10};
  ck_metric_t *f = ck_metrics_family(m, type, name, help, "name",
                                     type == CK_METRIC_HISTOGRAM ? buckets : NULL,
                                     type == CK_METRIC_HISTOGRAM ? 10 : 0);
  return ck_metric_series1(f, label);
}

static int metrics_init(ck_queue_t *q) {
  ck_metrics_t *m = q->metrics;
  q->m_depth = series(m, CK_METRIC_GAUGE, "workqueue_depth", "Current depth of workqueue", q->name);
  q->m_adds = series(m, CK_METRIC_COUNTER, "workqueue_adds_total",
                     "Total number of adds handled by workqueue", q->name);
  q->m_queue_dur =
      series(m, CK_METRIC_HISTOGRAM, "workqueue_queue_duration_seconds",
             "How long in seconds an item stays in workqueue before being requested", q->name);
  q->m_work_dur = series(m, CK_METRIC_HISTOGRAM, "workqueue_work_duration_seconds",
                         "How long in seconds processing an item from workqueue takes", q->name);
  q->m_retries = series(m, CK_METRIC_COUNTER, "workqueue_retries_total",
                        "Total number of retries handled by workqueue", q->name);
  if (!q->m_depth || !q->m_adds || !q->m_queue_dur || !q->m_work_dur || !q->m_retries)
    CK_WARN("workqueue", q->name, "some workqueue metrics could not be registered");
  int id = ck_metrics_add_collector(m, collect, q);
  if (id < 0)
    return id;
  q->collector = id;
  return 0;
}

/* ---- public API --------------------------------------------------------- */

int ck_queue_new(const ck_queue_opts_t *opts, ck_queue_t **out) {
  ck_queue_opts_t o = opts ? *opts : (ck_queue_opts_t){0};
  *out = NULL;
  ck_queue_t *q = calloc(1, sizeof *q);
  if (!q)
    return CK_ENOMEM;
  q->collector = -1;
  q->nbuckets = 64;
  q->buckets = calloc(q->nbuckets, sizeof(qent_t *));
  q->name = strdup(o.name ? o.name : "");
  if (!q->buckets || !q->name) {
    free(q->buckets);
    free(q->name);
    free(q);
    return CK_ENOMEM;
  }
  q->base_ns = (o.base_delay_ms > 0 ? o.base_delay_ms : 5) * NS_PER_MS;
  int64_t max_ms = o.max_delay_ms > 0 ? o.max_delay_ms : 1000000;
  q->max_ns = max_ms > INT64_MAX / NS_PER_MS ? INT64_MAX : max_ms * NS_PER_MS;
  q->qps = o.qps == 0 ? 10 : o.qps;
  q->burst = o.burst > 0 ? o.burst : 100;
  q->tokens = q->burst;
  q->tokens_ns = mono_ns();

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->get_cond, &ca);
  pthread_cond_init(&q->idle_cond, &ca);
  pthread_cond_init(&q->timer_cond, &ca);
  pthread_condattr_destroy(&ca);

  if (pthread_create(&q->timer, NULL, timer_main, q) != 0) {
    pthread_cond_destroy(&q->timer_cond);
    pthread_cond_destroy(&q->idle_cond);
    pthread_cond_destroy(&q->get_cond);
    pthread_mutex_destroy(&q->mu);
    free(q->buckets);
    free(q->name);
    free(q);
    return CK_ENOMEM;
  }
  if (o.metrics) {
    q->metrics = o.metrics;
    int rc = metrics_init(q);
    if (rc != 0) {
      ck_queue_free(q);
      return rc;
    }
  }
  *out = q;
  return 0;
}

void ck_queue_free(ck_queue_t *q) {
  if (!q)
    return;
  /* First, so no scrape can enter the queue while it is torn down. */
  if (q->collector >= 0)
    ck_metrics_remove_collector(q->metrics, q->collector);
  ck_queue_shutdown(q);
  pthread_mutex_lock(&q->mu);
  q->stop = true;
  pthread_cond_signal(&q->timer_cond);
  pthread_mutex_unlock(&q->mu);
  pthread_join(q->timer, NULL);
  for (size_t i = 0; i < q->nbuckets; i++) {
    qent_t *e = q->buckets[i];
    while (e) {
      qent_t *next = e->hnext;
      free(e);
      e = next;
    }
  }
  free(q->buckets);
  free(q->ring);
  free(q->heap);
  free(q->name);
  pthread_cond_destroy(&q->timer_cond);
  pthread_cond_destroy(&q->idle_cond);
  pthread_cond_destroy(&q->get_cond);
  pthread_mutex_destroy(&q->mu);
  free(q);
}

static int add_ns(ck_queue_t *q, const char *key, int64_t delay_ns) {
  pthread_mutex_lock(&q->mu);
  int rc = 0;
  qent_t *e;
  if (q->closed)
    rc = CK_ECLOSED;
  else if (!(e = entry_get(q, key)))
    rc = CK_ENOMEM;
  else {
    add_after_locked(q, e, delay_ns);
    entry_release(q, e);
  }
  pthread_mutex_unlock(&q->mu);
  return rc;
}

int ck_queue_add(ck_queue_t *q, const char *key) { return add_ns(q, key, 0); }

int ck_queue_add_after(ck_queue_t *q, const char *key, int64_t delay_ms) {
  int64_t ns = delay_ms > INT64_MAX / NS_PER_MS ? INT64_MAX : delay_ms * NS_PER_MS;
  return add_ns(q, key, delay_ms <= 0 ? 0 : ns);
}

int ck_queue_add_rate_limited(ck_queue_t *q, const char *key) {
  pthread_mutex_lock(&q->mu);
  int rc = 0;
  qent_t *e;
  if (q->closed)
    rc = CK_ECLOSED;
  else if (!(e = entry_get(q, key)))
    rc = CK_ENOMEM;
  else {
    int64_t per_key = backoff_ns(q, e->failures);
    if (e->failures < INT_MAX)
      e->failures++;
    int64_t overall = bucket_ns(q, mono_ns());
    ck_series_inc(q->m_retries);
    add_after_locked(q, e, per_key > overall ? per_key : overall);
    entry_release(q, e);
  }
  pthread_mutex_unlock(&q->mu);
  return rc;
}

void ck_queue_forget(ck_queue_t *q, const char *key) {
  pthread_mutex_lock(&q->mu);
  qent_t *e = lookup(q, key, hash_key(key));
  if (e) {
    e->failures = 0;
    entry_release(q, e);
  }
  pthread_mutex_unlock(&q->mu);
}

int ck_queue_num_requeues(ck_queue_t *q, const char *key) {
  pthread_mutex_lock(&q->mu);
  qent_t *e = lookup(q, key, hash_key(key));
  int n = e ? e->failures : 0;
  pthread_mutex_unlock(&q->mu);
  return n;
}

int ck_queue_get(ck_queue_t *q, int64_t timeout_ms, char **key) {
  *key = NULL;
  int64_t deadline =
      timeout_ms < 0 ? INT64_MAX : add_sat(mono_ns(), timeout_ms > INT64_MAX / NS_PER_MS
                                                          ? INT64_MAX
                                                          : timeout_ms * NS_PER_MS);
  pthread_mutex_lock(&q->mu);
  int rc = 0;
  for (;;) {
    if (q->ring_len > 0)
      break;
    /* Drain: a key added while processing counts as waiting, so getters
     * stay until its done has handed it back to the ring. */
    if (q->closed && q->ndirty == 0) {
      rc = CK_ECLOSED;
      break;
    }
    if (deadline == INT64_MAX) {
      pthread_cond_wait(&q->get_cond, &q->mu);
    } else {
      if (mono_ns() >= deadline) {
        rc = CK_ETIMEDOUT;
        break;
      }
      struct timespec ts = ns_to_ts(deadline);
      pthread_cond_timedwait(&q->get_cond, &q->mu, &ts);
    }
  }
  if (rc == 0) {
    qent_t *e = q->ring[q->ring_head];
    char *copy = strdup(e->key);
    if (!copy) {
      pthread_mutex_unlock(&q->mu);
      return CK_ENOMEM; /* the key stays at the head */
    }
    q->ring_head = (q->ring_head + 1) & (q->ring_cap - 1);
    q->ring_len--;
    update_depth(q);
    int64_t now = mono_ns();
    e->dirty = false;
    q->ndirty--;
    e->processing = true;
    e->started_ns = now;
    e->pprev = NULL;
    e->pnext = q->processing;
    if (q->processing)
      q->processing->pprev = e;
    q->processing = e;
    q->nprocessing++;
    ck_series_observe(q->m_queue_dur, (double)(now - e->added_ns) / 1e9);
    *key = copy;
    /* More keys: pass the signal on, as one add woke only one getter. */
    if (q->ring_len > 0)
      pthread_cond_signal(&q->get_cond);
    else if (q->closed && q->ndirty == 0)
      pthread_cond_broadcast(&q->get_cond);
  }
  pthread_mutex_unlock(&q->mu);
  return rc;
}

void ck_queue_done(ck_queue_t *q, const char *key) {
  pthread_mutex_lock(&q->mu);
  qent_t *e = lookup(q, key, hash_key(key));
  if (!e || !e->processing) {
    pthread_mutex_unlock(&q->mu);
    CK_DEBUG("workqueue", key, "done for a key that is not being processed");
    return;
  }
  int64_t now = mono_ns();
  ck_series_observe(q->m_work_dur, (double)(now - e->started_ns) / 1e9);
  e->processing = false;
  if (e->pprev)
    e->pprev->pnext = e->pnext;
  else
    q->processing = e->pnext;
  if (e->pnext)
    e->pnext->pprev = e->pprev;
  e->pnext = e->pprev = NULL;
  q->nprocessing--;
  if (e->dirty) {
    q->ring[(q->ring_head + q->ring_len) & (q->ring_cap - 1)] = e;
    q->ring_len++;
    update_depth(q);
    pthread_cond_signal(&q->get_cond);
  }
  if (q->ring_len == 0 && q->nprocessing == 0)
    pthread_cond_broadcast(&q->idle_cond);
  entry_release(q, e);
  pthread_mutex_unlock(&q->mu);
}

void ck_queue_shutdown(ck_queue_t *q) {
  pthread_mutex_lock(&q->mu);
  if (!q->closed) {
    q->closed = true;
    size_t n = q->heap_len;
    q->heap_len = 0;
    for (size_t i = 0; i < n; i++) {
      q->heap[i]->heap_idx = NO_HEAP;
      entry_release(q, q->heap[i]);
    }
    pthread_cond_broadcast(&q->get_cond);
    pthread_cond_signal(&q->timer_cond);
  }
  pthread_mutex_unlock(&q->mu);
}

int ck_queue_wait_idle(ck_queue_t *q, int64_t timeout_ms) {
  int64_t deadline =
      timeout_ms < 0 ? INT64_MAX : add_sat(mono_ns(), timeout_ms > INT64_MAX / NS_PER_MS
                                                          ? INT64_MAX
                                                          : timeout_ms * NS_PER_MS);
  pthread_mutex_lock(&q->mu);
  int rc = 0;
  while (q->ring_len > 0 || q->nprocessing > 0) {
    if (deadline == INT64_MAX) {
      pthread_cond_wait(&q->idle_cond, &q->mu);
      continue;
    }
    if (mono_ns() >= deadline) {
      rc = CK_ETIMEDOUT;
      break;
    }
    struct timespec ts = ns_to_ts(deadline);
    pthread_cond_timedwait(&q->idle_cond, &q->mu, &ts);
  }
  pthread_mutex_unlock(&q->mu);
  return rc;
}

size_t ck_queue_len(ck_queue_t *q) {
  pthread_mutex_lock(&q->mu);
  size_t n = q->ring_len;
  pthread_mutex_unlock(&q->mu);
  return n;
}

/* Unit tests of the work queue (lib/runtime/workqueue.c). Timing checks
 * only assert that nothing comes out before it is due (correctness); upper
 * bounds are generous, because the machine running the tests is busy. */
#include "cktest.h"

#include "crdkit/error.h"
#include "crdkit/metrics.h"
#include "crdkit/workqueue.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ck_queue_t *queue_new(const ck_queue_opts_t *o) {
  ck_queue_t *q = NULL;
  cr_assert_eq(ck_queue_new(o, &q), 0);
  cr_assert_not_null(q);
  return q;
}

/* Get a key within `timeout_ms` and check it is `want`; calls done. */
static void expect_key(ck_queue_t *q, const char *want, int64_t timeout_ms) {
  char *k = NULL;
  int rc = ck_queue_get(q, timeout_ms, &k);
  cr_assert_eq(rc, 0, "get: %d, wanted %s", rc, want);
  cr_assert_str_eq(k, want);
  ck_queue_done(q, k);
  free(k);
}

static void expect_empty(ck_queue_t *q, int64_t timeout_ms) {
  char *k = NULL;
  int rc = ck_queue_get(q, timeout_ms, &k);
  cr_assert_eq(rc, CK_ETIMEDOUT, "get: %d (key %s), wanted a timeout", rc, k ? k : "-");
  cr_assert_null(k);
}

/* ---- basics ------------------------------------------------------------ */

CK_TEST(workqueue, new_with_null_opts_and_free_empty) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_len(q), 0);
  expect_empty(q, 0);
  ck_queue_free(q);
  ck_queue_free(NULL);
}

CK_TEST(workqueue, dedupes_waiting_keys) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add(q, "b"), 0);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_len(q), 2);
  expect_key(q, "a", 0);
  expect_key(q, "b", 0);
  expect_empty(q, 0);
  /* Once handed out and done, the key can be queued again. */
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_len(q), 1);
  expect_key(q, "a", 0);
  ck_queue_free(q);
}

CK_TEST(workqueue, readded_while_processing_comes_out_once_more_after_done) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  char *k = NULL;
  cr_assert_eq(ck_queue_get(q, 0, &k), 0);
  cr_assert_str_eq(k, "a");
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  /* Not handed to a second worker while the first holds it. */
  cr_assert_eq(ck_queue_len(q), 0);
  expect_empty(q, 50);
  ck_queue_done(q, k);
  free(k);
  cr_assert_eq(ck_queue_len(q), 1);
  expect_key(q, "a", 0);
  expect_empty(q, 20);
  /* done for a key nobody holds is harmless. */
  ck_queue_done(q, "a");
  ck_queue_done(q, "never");
  expect_empty(q, 0);
  ck_queue_free(q);
}

CK_TEST(workqueue, keys_are_copied) {
  ck_queue_t *q = queue_new(NULL);
  char key[16];
  snprintf(key, sizeof key, "ns/obj");
  cr_assert_eq(ck_queue_add(q, key), 0);
  memset(key, 'x', sizeof key - 1);
  expect_key(q, "ns/obj", 0);
  ck_queue_free(q);
}

/* ---- per-key serialisation under concurrency ---------------------------- */

#define NKEYS 50
#define NWORKERS 8
#define NADDERS 2

typedef struct {
  ck_queue_t *q;
  atomic_int busy[NKEYS];
  atomic_int overlaps;
  atomic_long processed;
  atomic_long seq;
  atomic_long last_add[NKEYS];   /* seq taken before the latest add call */
  atomic_long last_start[NKEYS]; /* seq taken after the latest get */
  atomic_int readd_budget;
  atomic_int errors; /* worker threads count failures: no asserts off the test thread */
} stress_t;

static unsigned xorshift(unsigned *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

static void stress_add(stress_t *st, int i) {
  long s = atomic_fetch_add(&st->seq, 1);
  char key[16];
  snprintf(key, sizeof key, "k%d", i);
  if (ck_queue_add(st->q, key) != 0)
    atomic_fetch_add(&st->errors, 1);
  long cur = atomic_load(&st->last_add[i]);
  while (cur < s && !atomic_compare_exchange_weak(&st->last_add[i], &cur, s)) {
  }
}

static void *stress_worker(void *arg) {
  stress_t *st = arg;
  unsigned rnd = (unsigned)(uintptr_t)&rnd | 1u;
  for (;;) {
    char *k = NULL;
    int rc = ck_queue_get(st->q, -1, &k);
    if (rc != 0) {
      if (rc != CK_ECLOSED)
        atomic_fetch_add(&st->errors, 1);
      break;
    }
    int i = (int)strtol(k + 1, NULL, 10);
    if (atomic_exchange(&st->busy[i], 1) != 0)
      atomic_fetch_add(&st->overlaps, 1);
    atomic_store(&st->last_start[i], atomic_fetch_add(&st->seq, 1));
    atomic_fetch_add(&st->processed, 1);
    unsigned r = xorshift(&rnd);
    if (r % 4 == 0 && atomic_fetch_sub(&st->readd_budget, 1) > 0)
      stress_add(st, i); /* the key being processed */
    if (r % 5 == 0 && atomic_fetch_sub(&st->readd_budget, 1) > 0)
      stress_add(st, (int)(xorshift(&rnd) % NKEYS));
    for (unsigned spin = r % 200; spin > 0; spin--)
      sched_yield();
    atomic_store(&st->busy[i], 0);
    ck_queue_done(st->q, k);
    free(k);
  }
  return NULL;
}

static void *stress_adder(void *arg) {
  stress_t *st = arg;
  unsigned rnd = (unsigned)(uintptr_t)&rnd | 1u;
  for (int n = 0; n < 20000; n++) {
    stress_add(st, (int)(xorshift(&rnd) % NKEYS));
    if (n % 64 == 0)
      sched_yield();
  }
  return NULL;
}

CK_TEST_OPTS(workqueue, never_two_workers_on_one_key_and_no_add_lost, .timeout = 120) {
  stress_t *st = calloc(1, sizeof *st);
  cr_assert_not_null(st);
  st->q = queue_new(NULL);
  atomic_store(&st->readd_budget, 20000);
  for (int i = 0; i < NKEYS; i++) {
    atomic_store(&st->last_add[i], -1);
    atomic_store(&st->last_start[i], -1);
  }
  pthread_t w[NWORKERS], a[NADDERS];
  for (int i = 0; i < NWORKERS; i++)
    cr_assert_eq(pthread_create(&w[i], NULL, stress_worker, st), 0);
  for (int i = 0; i < NADDERS; i++)
    cr_assert_eq(pthread_create(&a[i], NULL, stress_adder, st), 0);
  for (int i = 0; i < NADDERS; i++)
    pthread_join(a[i], NULL);
  /* Workers only re-add while processing, so idle means no more adds. */
  cr_assert_eq(ck_queue_wait_idle(st->q, 60000), 0);
  ck_queue_shutdown(st->q);
  for (int i = 0; i < NWORKERS; i++)
    pthread_join(w[i], NULL);
  cr_assert_eq(atomic_load(&st->errors), 0);
  cr_assert_eq(atomic_load(&st->overlaps), 0, "a key was processed by two workers at once");
  cr_assert_gt(atomic_load(&st->processed), NKEYS);
  for (int i = 0; i < NKEYS; i++) {
    long la = atomic_load(&st->last_add[i]), ls = atomic_load(&st->last_start[i]);
    cr_assert_geq(la, 0);
    cr_assert_gt(ls, la, "k%d added (seq %ld) after its last processing start (seq %ld)", i, la,
                 ls);
  }
  cr_assert_eq(ck_queue_len(st->q), 0);
  ck_queue_free(st->q);
  free(st);
}

/* ---- rate limiting ------------------------------------------------------ */

/* ms from `t0` until `key` comes out (then done). */
static int64_t ms_until_key(ck_queue_t *q, const char *key, int64_t t0) {
  char *k = NULL;
  cr_assert_eq(ck_queue_get(q, 30000, &k), 0, "%s never came out", key);
  int64_t dt = cktest_now_ms() - t0;
  cr_assert_str_eq(k, key);
  ck_queue_done(q, k);
  free(k);
  return dt;
}

CK_TEST_OPTS(workqueue, backoff_doubles_caps_and_forget_resets, .timeout = 60) {
  ck_queue_opts_t o = {.base_delay_ms = 10, .max_delay_ms = 640, .qps = -1};
  ck_queue_t *q = queue_new(&o);
  const int64_t want[] = {10, 20, 40, 80, 160, 320, 640, 640};
  cr_assert_eq(ck_queue_num_requeues(q, "a"), 0);
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    int64_t t0 = cktest_now_ms();
    cr_assert_eq(ck_queue_add_rate_limited(q, "a"), 0);
    cr_assert_eq(ck_queue_num_requeues(q, "a"), (int)i + 1);
    cr_assert_eq(ck_queue_len(q), 0, "a rate-limited key waits for its timer");
    int64_t dt = ms_until_key(q, "a", t0);
    cr_assert_geq(dt, want[i], "retry %zu came out after %lld ms, before its %lld ms backoff", i,
                  (long long)dt, (long long)want[i]);
    cr_assert_lt(dt, want[i] + 5000);
  }
  /* Backoffs are per key. */
  cr_assert_eq(ck_queue_num_requeues(q, "b"), 0);
  ck_queue_forget(q, "a");
  cr_assert_eq(ck_queue_num_requeues(q, "a"), 0);
  int64_t t0 = cktest_now_ms();
  cr_assert_eq(ck_queue_add_rate_limited(q, "a"), 0);
  int64_t dt = ms_until_key(q, "a", t0);
  cr_assert_geq(dt, 10);
  cr_assert_lt(dt, 600, "after forget the backoff starts again at 10 ms, took %lld ms",
               (long long)dt);
  cr_assert_eq(ck_queue_num_requeues(q, "a"), 1);
  ck_queue_forget(q, "a");
  ck_queue_forget(q, "unknown");
  ck_queue_free(q);
}

CK_TEST(workqueue, backoff_with_defaults_survives_many_retries) {
  /* 200 doublings of 5 ms must saturate at the cap, not overflow (UBSan). */
  ck_queue_t *q = queue_new(NULL);
  for (int i = 0; i < 200; i++)
    cr_assert_eq(ck_queue_add_rate_limited(q, "a"), 0);
  cr_assert_eq(ck_queue_num_requeues(q, "a"), 200);
  /* Still delayed by its first (5 ms) timer: the shorter delay won. */
  expect_key(q, "a", 10000);
  cr_assert_eq(ck_queue_num_requeues(q, "a"), 200);
  ck_queue_free(q);
}

CK_TEST_OPTS(workqueue, token_bucket_spreads_distinct_keys_at_qps, .timeout = 60) {
  /* 20 qps, burst 2: keys 0 and 1 at once, then one per 50 ms. */
  ck_queue_opts_t o = {.base_delay_ms = 1, .qps = 20, .burst = 2};
  ck_queue_t *q = queue_new(&o);
  int64_t t0 = cktest_now_ms();
  char key[16];
  for (int i = 0; i < 12; i++) {
    snprintf(key, sizeof key, "k%d", i);
    cr_assert_eq(ck_queue_add_rate_limited(q, key), 0);
    cr_assert_eq(ck_queue_num_requeues(q, key), 1);
  }
  for (int i = 0; i < 12; i++) {
    snprintf(key, sizeof key, "k%d", i);
    int64_t dt = ms_until_key(q, key, t0);
    int64_t due = i < 2 ? 1 : (i - 1) * 50;
    /* -2 ms: the bucket refills a little while the adds run. */
    cr_assert_geq(dt, due - 2, "k%d came out after %lld ms, due at %lld", i, (long long)dt,
                  (long long)due);
  }
  cr_assert_lt(cktest_now_ms() - t0, 15000);
  ck_queue_free(q);
}

CK_TEST_OPTS(workqueue, negative_qps_disables_the_bucket, .timeout = 60) {
  ck_queue_opts_t o = {.base_delay_ms = 1, .qps = -1, .burst = 1};
  ck_queue_t *q = queue_new(&o);
  char key[16];
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "k%d", i);
    cr_assert_eq(ck_queue_add_rate_limited(q, key), 0);
  }
  /* With any bucket of burst 1 most keys would still be waiting. */
  for (int tries = 0; tries < 100 && ck_queue_len(q) < 20; tries++)
    cktest_sleep_ms(50);
  cr_assert_eq(ck_queue_len(q), 20);
  ck_queue_free(q);
}

CK_TEST_OPTS(workqueue, bucket_with_small_qps_holds_keys_back, .timeout = 60) {
  /* 1 qps, burst 3: the 4th key is due after 1 s, whatever its backoff. */
  ck_queue_opts_t o = {.base_delay_ms = 1, .qps = 1, .burst = 3};
  ck_queue_t *q = queue_new(&o);
  int64_t t0 = cktest_now_ms();
  char key[16];
  for (int i = 0; i < 4; i++) {
    snprintf(key, sizeof key, "k%d", i);
    cr_assert_eq(ck_queue_add_rate_limited(q, key), 0);
  }
  for (int i = 0; i < 3; i++) {
    snprintf(key, sizeof key, "k%d", i);
    ms_until_key(q, key, t0);
  }
  int64_t dt = ms_until_key(q, "k3", t0);
  cr_assert_geq(dt, 995, "k3 came out after %lld ms, before its token existed", (long long)dt);
  cr_assert_lt(dt, 20000);
  ck_queue_free(q);
}

/* ---- delayed adds ------------------------------------------------------- */

CK_TEST_OPTS(workqueue, add_after_waits_and_shorter_delay_wins, .timeout = 60) {
  ck_queue_t *q = queue_new(NULL);
  int64_t t0 = cktest_now_ms();
  cr_assert_eq(ck_queue_add_after(q, "a", 150), 0);
  cr_assert_eq(ck_queue_len(q), 0);
  int64_t dt = ms_until_key(q, "a", t0);
  cr_assert_geq(dt, 150);
  cr_assert_lt(dt, 5000);

  /* A shorter delay replaces a longer one... */
  t0 = cktest_now_ms();
  cr_assert_eq(ck_queue_add_after(q, "b", 60000), 0);
  cr_assert_eq(ck_queue_add_after(q, "b", 100), 0);
  dt = ms_until_key(q, "b", t0);
  cr_assert_geq(dt, 100);
  cr_assert_lt(dt, 10000);
  /* ...and a longer one does not replace a shorter one. */
  t0 = cktest_now_ms();
  cr_assert_eq(ck_queue_add_after(q, "c", 100), 0);
  cr_assert_eq(ck_queue_add_after(q, "c", 60000), 0);
  dt = ms_until_key(q, "c", t0);
  cr_assert_geq(dt, 100);
  cr_assert_lt(dt, 10000);
  expect_empty(q, 200); /* no second copy of b or c */

  /* Zero or negative delays queue at once. */
  cr_assert_eq(ck_queue_add_after(q, "d", 0), 0);
  cr_assert_eq(ck_queue_add_after(q, "e", -5), 0);
  cr_assert_eq(ck_queue_len(q), 2);
  expect_key(q, "d", 0);
  expect_key(q, "e", 0);
  ck_queue_free(q);
}

CK_TEST_OPTS(workqueue, delayed_keys_come_out_in_deadline_order, .timeout = 60) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add_after(q, "late", 400), 0);
  cr_assert_eq(ck_queue_add_after(q, "early", 100), 0);
  cr_assert_eq(ck_queue_add_after(q, "middle", 250), 0);
  expect_key(q, "early", 10000);
  expect_key(q, "middle", 10000);
  expect_key(q, "late", 10000);
  ck_queue_free(q);
}

CK_TEST_OPTS(workqueue, timer_of_a_waiting_key_queues_it_again_later, .timeout = 60) {
  /* As client-go: a delayed add is independent of the key's waiting copy. */
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add_after(q, "a", 100), 0);
  cr_assert_eq(ck_queue_len(q), 1);
  int64_t t0 = cktest_now_ms();
  expect_key(q, "a", 0);
  cr_assert_geq(ms_until_key(q, "a", t0), 100);
  expect_empty(q, 150);
  ck_queue_free(q);
}

/* ---- fairness ----------------------------------------------------------- */

CK_TEST_OPTS(workqueue, fifo_new_key_after_ten_thousand, .timeout = 60) {
  ck_queue_t *q = queue_new(NULL);
  char key[16];
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof key, "k%d", i);
    cr_assert_eq(ck_queue_add(q, key), 0);
  }
  cr_assert_eq(ck_queue_add(q, "new"), 0);
  cr_assert_eq(ck_queue_len(q), 10001);
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof key, "k%d", i);
    char *k = NULL;
    cr_assert_eq(ck_queue_get(q, 0, &k), 0);
    if (strcmp(k, key) != 0)
      cr_assert_fail("got %s at position %d, wanted %s", k, i, key);
    ck_queue_done(q, k);
    free(k);
  }
  expect_key(q, "new", 0);
  ck_queue_free(q);
}

CK_TEST(workqueue, hot_key_readded_while_processing_cannot_starve_others) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add(q, "hot"), 0);
  char key[16];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "o%d", i);
    cr_assert_eq(ck_queue_add(q, key), 0);
  }
  int others = 0, hot = 0, gets = 0;
  while (others < 100) {
    char *k = NULL;
    cr_assert_eq(ck_queue_get(q, 0, &k), 0);
    gets++;
    cr_assert_leq(gets, 202, "other keys starved: %d of 100 after %d gets", others, gets);
    if (strcmp(k, "hot") == 0) {
      hot++;
      cr_assert_eq(ck_queue_add(q, "hot"), 0); /* every time, while processing */
    } else {
      others++;
    }
    ck_queue_done(q, k);
    free(k);
  }
  cr_assert_geq(hot, 1);
  ck_queue_free(q);
}

CK_TEST_OPTS(workqueue, hundred_thousand_keys, .timeout = 120) {
  ck_queue_t *q = queue_new(NULL);
  char key[24];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 100000; i++) {
      snprintf(key, sizeof key, "ns/obj-%d", i);
      cr_assert_eq(ck_queue_add(q, key), 0);
    }
    for (int i = 0; i < 100000; i += 7) {
      snprintf(key, sizeof key, "ns/obj-%d", i);
      cr_assert_eq(ck_queue_add(q, key), 0); /* deduped */
    }
    cr_assert_eq(ck_queue_len(q), 100000);
    for (int i = 0; i < 100000; i++) {
      snprintf(key, sizeof key, "ns/obj-%d", i);
      char *k = NULL;
      cr_assert_eq(ck_queue_get(q, 0, &k), 0);
      if (strcmp(k, key) != 0)
        cr_assert_fail("got %s at position %d, wanted %s", k, i, key);
      ck_queue_done(q, k);
      free(k);
    }
    cr_assert_eq(ck_queue_len(q), 0);
  }
  ck_queue_free(q);
}

/* ---- shutdown and idle -------------------------------------------------- */

CK_TEST(workqueue, shutdown_drains_then_closed_and_refuses_adds) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add(q, "b"), 0);
  cr_assert_eq(ck_queue_add_after(q, "delayed", 50), 0);
  ck_queue_shutdown(q);
  ck_queue_shutdown(q); /* idempotent */
  cr_assert_eq(ck_queue_add(q, "c"), CK_ECLOSED);
  cr_assert_eq(ck_queue_add_after(q, "c", 10), CK_ECLOSED);
  cr_assert_eq(ck_queue_add_rate_limited(q, "c"), CK_ECLOSED);
  cr_assert_eq(ck_queue_num_requeues(q, "c"), 0);
  cr_assert_eq(ck_queue_len(q), 2);
  expect_key(q, "a", 0);
  expect_key(q, "b", 0);
  /* The delayed key was dropped: closed at once, even when waiting forever. */
  char *k = NULL;
  cr_assert_eq(ck_queue_get(q, -1, &k), CK_ECLOSED);
  cr_assert_null(k);
  cr_assert_eq(ck_queue_get(q, 0, &k), CK_ECLOSED);
  cktest_sleep_ms(100);
  cr_assert_eq(ck_queue_get(q, 0, &k), CK_ECLOSED);
  ck_queue_free(q);
}

typedef struct {
  ck_queue_t *q;
  int rc;
  char *key;
} getter_t;

static void *getter_main(void *arg) {
  getter_t *g = arg;
  g->rc = ck_queue_get(g->q, -1, &g->key);
  return NULL;
}

CK_TEST_OPTS(workqueue, shutdown_wakes_blocked_getters, .timeout = 60) {
  ck_queue_t *q = queue_new(NULL);
  getter_t g[3];
  pthread_t t[3];
  for (int i = 0; i < 3; i++) {
    g[i] = (getter_t){.q = q, .rc = 1};
    cr_assert_eq(pthread_create(&t[i], NULL, getter_main, &g[i]), 0);
  }
  cktest_sleep_ms(100);
  ck_queue_shutdown(q);
  for (int i = 0; i < 3; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(g[i].rc, CK_ECLOSED);
    cr_assert_null(g[i].key);
  }
  ck_queue_free(q);
}

CK_TEST_OPTS(workqueue, shutdown_still_hands_out_a_key_readded_while_processing, .timeout = 60) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  char *k = NULL;
  cr_assert_eq(ck_queue_get(q, 0, &k), 0);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  ck_queue_shutdown(q);
  getter_t g = {.q = q, .rc = 1};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, getter_main, &g), 0);
  cktest_sleep_ms(100);
  ck_queue_done(q, k);
  free(k);
  pthread_join(t, NULL);
  cr_assert_eq(g.rc, 0, "the getter ended with %d instead of the requeued key", g.rc);
  cr_assert_str_eq(g.key, "a");
  ck_queue_done(q, g.key);
  free(g.key);
  cr_assert_eq(ck_queue_get(q, -1, &k), CK_ECLOSED);
  ck_queue_free(q);
}

CK_TEST(workqueue, free_with_keys_timers_and_backoffs_left) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add(q, "b"), 0);
  cr_assert_eq(ck_queue_add_after(q, "c", 60000), 0);
  cr_assert_eq(ck_queue_add_rate_limited(q, "d"), 0);
  char *k = NULL;
  cr_assert_eq(ck_queue_get(q, 0, &k), 0);
  free(k); /* never done: free must still release everything */
  ck_queue_free(q);
}

typedef struct {
  ck_queue_t *q;
  atomic_int processed;
} idle_worker_t;

static void *idle_worker(void *arg) {
  idle_worker_t *w = arg;
  char *k = NULL;
  while (ck_queue_get(w->q, -1, &k) == 0) {
    cktest_sleep_ms(100);
    atomic_fetch_add(&w->processed, 1);
    ck_queue_done(w->q, k);
    free(k);
  }
  return NULL;
}

CK_TEST_OPTS(workqueue, wait_idle, .timeout = 60) {
  ck_queue_t *q = queue_new(NULL);
  cr_assert_eq(ck_queue_wait_idle(q, 0), 0);
  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add(q, "b"), 0);
  cr_assert_eq(ck_queue_wait_idle(q, 50), CK_ETIMEDOUT);
  /* Delayed keys do not count as work. */
  cr_assert_eq(ck_queue_add_after(q, "later", 60000), 0);
  idle_worker_t w = {.q = q};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, idle_worker, &w), 0);
  cr_assert_eq(ck_queue_wait_idle(q, -1), 0);
  /* Idle only after both were processed and done, not when the last was
   * taken out of the queue. */
  cr_assert_eq(atomic_load(&w.processed), 2);
  cr_assert_eq(ck_queue_len(q), 0);
  ck_queue_shutdown(q);
  pthread_join(t, NULL);
  ck_queue_free(q);
}

/* ---- metrics ------------------------------------------------------------ */

static double series_value(ck_metrics_t *m, ck_metric_type_t type, const char *name,
                           const char *qname) {
  ck_metric_t *f = ck_metrics_family(m, type, name, "", "name", NULL, 0);
  cr_assert_not_null(f, "family %s", name);
  ck_series_t *s = ck_metric_series1(f, qname);
  cr_assert_not_null(s);
  return ck_series_value(s);
}

/* The value of the sample line starting with `prefix` in `text`. */
static double sample(const char *text, const char *prefix) {
  const char *p = text;
  size_t n = strlen(prefix);
  while ((p = strstr(p, prefix)) != NULL) {
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtod(p + n + 1, NULL);
    p += n;
  }
  cr_assert_fail("no sample %s in:\n%s", prefix, text);
  return 0;
}

CK_TEST_OPTS(workqueue, metrics, .timeout = 60) {
  ck_metrics_t *m = ck_metrics_new();
  cr_assert_not_null(m);
  ck_queue_opts_t o = {.name = "wq-test", .metrics = m, .qps = -1};
  ck_queue_t *q = queue_new(&o);
  /* A second queue on the same registry has its own series. */
  ck_queue_opts_t o2 = {.name = "other", .metrics = m};
  ck_queue_t *q2 = queue_new(&o2);
  cr_assert_eq(ck_queue_add(q2, "x"), 0);

  cr_assert_eq(ck_queue_add(q, "a"), 0);
  cr_assert_eq(ck_queue_add(q, "b"), 0);
  cr_assert_eq(ck_queue_add(q, "a"), 0); /* deduped: not an add */
  cr_assert_eq(series_value(m, CK_METRIC_COUNTER, "workqueue_adds_total", "wq-test"), 2);
  cr_assert_eq(series_value(m, CK_METRIC_GAUGE, "workqueue_depth", "wq-test"), 2);
  cr_assert_eq(series_value(m, CK_METRIC_GAUGE, "workqueue_depth", "other"), 1);

  char *k = NULL;
  cr_assert_eq(ck_queue_get(q, 0, &k), 0);
  cr_assert_eq(series_value(m, CK_METRIC_GAUGE, "workqueue_depth", "wq-test"), 1);
  cr_assert_eq(
      series_value(m, CK_METRIC_HISTOGRAM, "workqueue_queue_duration_seconds", "wq-test"), 1);
  cr_assert_eq(
      series_value(m, CK_METRIC_HISTOGRAM, "workqueue_work_duration_seconds", "wq-test"), 0);
  cktest_sleep_ms(100);

  /* While `a` is processing, the scrape-time gauges see it. */
  char *text = ck_metrics_render(m);
  cr_assert_not_null(text);
  double unfinished = sample(text, "workqueue_unfinished_work_seconds{name=\"wq-test\"}");
  double longest = sample(text, "workqueue_longest_running_processor_seconds{name=\"wq-test\"}");
  cr_assert_geq(unfinished, 0.1);
  cr_assert_geq(longest, 0.1);
  cr_assert_lt(longest, 60);
  cr_assert_eq(sample(text, "workqueue_unfinished_work_seconds{name=\"other\"}"), 0);
  cr_assert_eq(sample(text, "workqueue_depth{name=\"wq-test\"}"), 1);
  cr_assert_eq(sample(text, "workqueue_adds_total{name=\"wq-test\"}"), 2);
  cr_assert_not_null(strstr(text, "# TYPE workqueue_queue_duration_seconds histogram"));
  cr_assert_eq(sample(text, "workqueue_queue_duration_seconds_count{name=\"wq-test\"}"), 1);
  cr_assert_eq(
      sample(text, "workqueue_queue_duration_seconds_bucket{name=\"wq-test\",le=\"+Inf\"}"), 1);
  /* client-go's buckets: ten decades from 1e-08 to 10. */
  const char *b10 = "workqueue_work_duration_seconds_bucket{name=\"wq-test\",le=\"10\"}";
  const char *b1e8 = "workqueue_work_duration_seconds_bucket{name=\"wq-test\",le=\"1e-08\"}";
  cr_assert_not_null(strstr(text, b10), "%s", text);
  cr_assert_not_null(strstr(text, b1e8), "%s", text);
  /* HELP/TYPE once per name even with two queues. */
  const char *t1 = strstr(text, "# TYPE workqueue_unfinished_work_seconds gauge");
  cr_assert_not_null(t1);
  cr_assert_null(strstr(t1 + 1, "# TYPE workqueue_unfinished_work_seconds gauge"));
  free(text);

  ck_queue_done(q, k);
  free(k);
  cr_assert_eq(
      series_value(m, CK_METRIC_HISTOGRAM, "workqueue_work_duration_seconds", "wq-test"), 1);

  /* A re-add while processing counts as an add, and the requeue on done
   * puts it back in the depth. */
  cr_assert_eq(ck_queue_get(q, 0, &k), 0);
  cr_assert_str_eq(k, "b");
  cr_assert_eq(ck_queue_add(q, "b"), 0);
  cr_assert_eq(series_value(m, CK_METRIC_COUNTER, "workqueue_adds_total", "wq-test"), 3);
  cr_assert_eq(series_value(m, CK_METRIC_GAUGE, "workqueue_depth", "wq-test"), 0);
  ck_queue_done(q, k);
  free(k);
  cr_assert_eq(series_value(m, CK_METRIC_GAUGE, "workqueue_depth", "wq-test"), 1);
  expect_key(q, "b", 0);

  /* Retries count rate-limited adds; the add itself counts when it fires. */
  cr_assert_eq(ck_queue_add_rate_limited(q, "c"), 0);
  cr_assert_eq(ck_queue_add_rate_limited(q, "c"), 0);
  cr_assert_eq(series_value(m, CK_METRIC_COUNTER, "workqueue_retries_total", "wq-test"), 2);
  expect_key(q, "c", 10000);
  /* Two timers for c, the shorter won: one add. */
  cr_assert_eq(series_value(m, CK_METRIC_COUNTER, "workqueue_adds_total", "wq-test"), 4);
  cr_assert_eq(series_value(m, CK_METRIC_GAUGE, "workqueue_depth", "wq-test"), 0);

  text = ck_metrics_render(m);
  cr_assert_not_null(text);
  cr_assert_eq(sample(text, "workqueue_unfinished_work_seconds{name=\"wq-test\"}"), 0);
  cr_assert_eq(sample(text, "workqueue_longest_running_processor_seconds{name=\"wq-test\"}"), 0);
  free(text);

  ck_queue_free(q);
  ck_queue_free(q2);
  /* The collectors are gone with their queues. */
  text = ck_metrics_render(m);
  cr_assert_not_null(text);
  cr_assert_null(strstr(text, "workqueue_unfinished_work_seconds{"));
  cr_assert_eq(sample(text, "workqueue_adds_total{name=\"wq-test\"}"), 4);
  free(text);
  ck_metrics_free(m);
}

/* Unit tests of the informer's cache (lib/runtime/store.c) and the pool
 * its entries live in (lib/util/pool.c): contents and indexes stay right
 * through updates, deletes, sweeps and the compactions they cause, and
 * the memory of dead entries is given back. */
#include "cktest.h"

#include "crdkit/error.h"
#include "runtime/store.h"
#include "util/pool.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An object ns/name at resourceVersion rv, owned by `owner` (NULL: none),
 * with a payload of `pad` bytes. */
static json_t *obj(const char *ns, const char *name, int rv, const char *owner, size_t pad) {
  char rvs[24];
  snprintf(rvs, sizeof rvs, "%d", rv);
  char *p = malloc(pad + 1);
  cr_assert_not_null(p);
  memset(p, 'x', pad);
  p[pad] = '\0';
  json_t *o = json_pack("{s:{s:s,s:s,s:s},s:s}", "metadata", "name", name, "namespace", ns,
                        "resourceVersion", rvs, "data", p);
  free(p);
  cr_assert_not_null(o);
  if (owner)
    json_object_set_new(json_object_get(o, "metadata"), "ownerReferences",
                        json_pack("[{s:s},{s:s}]", "uid", owner, "uid", owner));
  return o;
}

static int upsert(ck_store_t *s, json_t *o) {
  int rc = ck_store_upsert(s, o, 1, true, false, NULL);
  json_decref(o);
  return rc;
}

static int count_cb(void *ctx, json_t *o) {
  cr_assert(json_is_object(o));
  (*(size_t *)ctx)++;
  return 0;
}

static size_t count_ns(ck_store_t *s, const char *ns) {
  size_t n = 0;
  cr_assert_eq(ck_store_list(s, ns, count_cb, &n), 0);
  return n;
}

static size_t count_owner(ck_store_t *s, const char *uid) {
  size_t n = 0;
  cr_assert_eq(ck_store_by_index(s, CK_INDEX_OWNER, uid, count_cb, &n), 0);
  return n;
}

static int rv_of(ck_store_t *s, const char *key) {
  json_t *o = ck_store_get(s, key);
  if (!o)
    return -1;
  int rv = atoi(json_string_value(json_object_get(json_object_get(o, "metadata"), "resourceVersion")));
  json_decref(o);
  return rv;
}

Test(store, upsert_get_update_delete) {
  ck_store_t *s = ck_store_new();
  cr_assert_eq(upsert(s, obj("a", "x", 5, "u1", 10)), CK_STORE_ADDED);
  cr_assert_eq(upsert(s, obj("a", "x", 5, "u1", 10)), CK_STORE_UNCHANGED);
  cr_assert_eq(upsert(s, obj("a", "x", 4, "u1", 10)), CK_STORE_STALE);
  cr_assert_eq(rv_of(s, "a/x"), 5);
  json_t *old = NULL;
  json_t *o = obj("a", "x", 7, "u2", 20);
  cr_assert_eq(ck_store_upsert(s, o, 1, true, true, &old), CK_STORE_UPDATED);
  json_decref(o);
  cr_assert_str_eq(json_string_value(json_object_get(json_object_get(old, "metadata"), "resourceVersion")), "5");
  json_decref(old);
  cr_assert_eq(rv_of(s, "a/x"), 7);
  /* The index follows the update: u1 no longer owns it, u2 does (once,
   * although the object names u2 twice). */
  cr_assert_eq(count_owner(s, "u1"), 0);
  cr_assert_eq(count_owner(s, "u2"), 1);
  cr_assert_eq(count_ns(s, "a"), 1);
  cr_assert(ck_store_has(s, "a/x"));
  cr_assert_eq(ck_store_delete(s, "a/x", 0, &old), 1);
  cr_assert_not_null(old);
  json_decref(old);
  cr_assert_not(ck_store_has(s, "a/x"));
  cr_assert_eq(count_ns(s, "a"), 0);
  cr_assert_eq(count_owner(s, "u2"), 0);
  cr_assert_eq(ck_store_len(s), 0);
  cr_assert_eq(ck_store_bytes(s), 0);
  ck_store_free(s);
}

/* Thousands of updates and deletes: every survivor reads back at its
 * last version through the key and both indexes, the pool was compacted,
 * and what stays mapped is in proportion to what is live. */
Test(store, churn_compacts_and_keeps_everything) {
  ck_store_t *s = ck_store_new();
  enum { N = 4000 };
  char name[32], owner[32];
  int last[N];
  unsigned seed = 12345;
  /* Round 0 creates all; the others update a scattered third, so that
   * every chunk keeps some live entries among dead ones. */
  for (int round = 0; round <= 6; round++)
    for (int i = 0; i < N; i++) {
      seed = seed * 1103515245u + 12345u;
      if (round && (seed >> 16) % 3)
        continue;
      snprintf(name, sizeof name, "o-%05d", i);
      snprintf(owner, sizeof owner, "u-%d", i % 7);
      last[i] = (round + 1) * N + i;
      int rc = upsert(s, obj(i % 2 ? "odd" : "even", name, last[i], owner, 200 + (size_t)(i % 300)));
      cr_assert_eq(rc, round == 0 ? CK_STORE_ADDED : CK_STORE_UPDATED);
    }
  ck_store_mem_t m;
  ck_store_mem(s, &m);
  cr_assert_gt(m.compactions, 0, "no compaction after 6 rounds of updates");
  for (int i = 0; i < N; i += 5) {
    snprintf(name, sizeof name, "%s/o-%05d", i % 2 ? "odd" : "even", i);
    cr_assert_eq(ck_store_delete(s, name, 0, NULL), 1);
  }
  cr_assert_eq(ck_store_len(s), N - N / 5);
  cr_assert_eq(count_ns(s, "odd") + count_ns(s, "even"), N - N / 5);
  size_t owned = 0;
  for (int k = 0; k < 7; k++) {
    snprintf(owner, sizeof owner, "u-%d", k);
    owned += count_owner(s, owner);
  }
  cr_assert_eq(owned, N - N / 5);
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "%s/o-%05d", i % 2 ? "odd" : "even", i);
    cr_assert_eq(rv_of(s, name), i % 5 == 0 ? -1 : last[i], "%s", name);
  }
  ck_store_mem(s, &m);
  cr_assert_leq(m.live, m.used);
  /* At most a third dead (or the slack), plus the last chunk's tail. */
  cr_assert_lt(m.mapped, m.live + m.live / 2 + 2 * 256 * 1024, "live %zu mapped %zu", m.live, m.mapped);
  ck_store_free(s);
}

static void swept_cb(void *ctx, json_t *o) {
  cr_assert(json_is_object(o));
  (*(size_t *)ctx)++;
}

Test(store, sweep_removes_unmarked_in_namespace) {
  ck_store_t *s = ck_store_new();
  char name[32];
  for (int i = 0; i < 100; i++) {
    snprintf(name, sizeof name, "o-%d", i);
    json_t *o = obj(i % 2 ? "a" : "b", name, i + 1, NULL, 50);
    ck_store_upsert(s, o, i < 30 ? 2 : 1, true, false, NULL);
    json_decref(o);
  }
  size_t gone = 0;
  ck_store_sweep(s, "a", 2, 0, swept_cb, &gone);
  /* In "a" (odd i), the ones not marked 2 (i >= 30): 35 of them. */
  cr_assert_eq(gone, 35);
  cr_assert_eq(count_ns(s, "a"), 15);
  cr_assert_eq(count_ns(s, "b"), 50);
  cr_assert(ck_store_has(s, "a/o-1"));
  cr_assert_not(ck_store_has(s, "a/o-31"));
  ck_store_free(s);
}

static int observe(ck_store_t *s, json_t *o, bool may_add) {
  int rc = ck_store_observe(s, o, may_add, false, NULL);
  json_decref(o);
  return rc;
}

/* The answer to a write that arrives after the watch delivered the
 * object's deletion must not bring the object back; a later object of
 * the same name must still be added. */
Test(store, observe_does_not_bring_back_a_deleted_object) {
  ck_store_t *s = ck_store_new();
  cr_assert_eq(upsert(s, obj("a", "x", 10, NULL, 8)), CK_STORE_ADDED);
  cr_assert_eq(ck_store_delete(s, "a/x", 12, NULL), 1);
  cr_assert_eq(observe(s, obj("a", "x", 11, NULL, 8), true), CK_STORE_SKIPPED);
  cr_assert_eq(observe(s, obj("a", "x", 12, NULL, 8), true), CK_STORE_SKIPPED);
  cr_assert_not(ck_store_has(s, "a/x"));
  /* A delete of a key that was never cached counts too. */
  cr_assert_eq(ck_store_delete(s, "a/never", 20, NULL), 0);
  cr_assert_eq(observe(s, obj("a", "never", 19, NULL, 8), true), CK_STORE_SKIPPED);
  /* Created again after the delete: newer than it, so added. */
  cr_assert_eq(observe(s, obj("a", "x", 13, NULL, 8), true), CK_STORE_ADDED);
  cr_assert_eq(rv_of(s, "a/x"), 13);
  /* Without may_add nothing is added, tomb or not. */
  cr_assert_eq(observe(s, obj("a", "y", 30, NULL, 8), false), CK_STORE_SKIPPED);
  cr_assert_not(ck_store_has(s, "a/y"));
  /* And an older answer never replaces a newer copy. */
  cr_assert_eq(observe(s, obj("a", "x", 12, NULL, 8), true), CK_STORE_STALE);
  cr_assert_eq(observe(s, obj("a", "x", 14, NULL, 8), false), CK_STORE_UPDATED);
  cr_assert_eq(rv_of(s, "a/x"), 14);
  ck_store_free(s);
}

/* An observed answer keeps the entry's mark: a relist that did not see
 * the object still removes it, and one that did keeps it. An object a
 * sweep removed stays out for answers up to the list's resourceVersion. */
Test(store, observe_leaves_the_relist_to_decide) {
  ck_store_t *s = ck_store_new();
  json_t *o = obj("a", "gone", 5, NULL, 8);
  ck_store_upsert(s, o, 1, true, false, NULL);
  json_decref(o);
  o = obj("a", "kept", 6, NULL, 8);
  ck_store_upsert(s, o, 1, true, false, NULL);
  json_decref(o);
  /* A relist tagged 2 is under way: it lists "kept", then an answer
   * about each arrives. */
  o = obj("a", "kept", 6, NULL, 8);
  cr_assert_eq(ck_store_upsert(s, o, 2, false, false, NULL), CK_STORE_UNCHANGED);
  json_decref(o);
  cr_assert_eq(observe(s, obj("a", "kept", 7, NULL, 8), false), CK_STORE_UPDATED);
  cr_assert_eq(observe(s, obj("a", "gone", 5, NULL, 8), false), CK_STORE_UNCHANGED);
  cr_assert_eq(observe(s, obj("a", "gone", 7, NULL, 8), false), CK_STORE_UPDATED);
  size_t gone = 0;
  ck_store_sweep(s, "a", 2, 40, swept_cb, &gone);
  cr_assert_eq(gone, 1);
  cr_assert_not(ck_store_has(s, "a/gone"));
  cr_assert_eq(rv_of(s, "a/kept"), 7);
  cr_assert_eq(observe(s, obj("a", "gone", 39, NULL, 8), true), CK_STORE_SKIPPED);
  cr_assert_eq(observe(s, obj("a", "gone", 41, NULL, 8), true), CK_STORE_ADDED);
  ck_store_free(s);
}

/* More deletes than are remembered (65,536), of the same keys: no more
 * are kept than that, each key's latest delete still counts, and the
 * ones dropped are freed (ASan's leak check). */
Test(store, remembered_deletes_are_bounded) {
  ck_store_t *s = ck_store_new();
  char name[32];
  for (int i = 0; i < 70000; i++) {
    snprintf(name, sizeof name, "a/d-%d", i % 1000);
    ck_store_delete(s, name, (uint64_t)i + 1, NULL);
  }
  cr_assert_leq(ck_store_tombs_len(s), 65536, "deletes remembered: %zu", ck_store_tombs_len(s));
  cr_assert_geq(ck_store_tombs_len(s), 1000);
  /* The last delete of d-999 was at 70000: older answers stay out. */
  cr_assert_eq(observe(s, obj("a", "d-999", 69999, NULL, 8), true), CK_STORE_SKIPPED);
  cr_assert_eq(observe(s, obj("a", "d-999", 70001, NULL, 8), true), CK_STORE_ADDED);
  ck_store_free(s);
}

/* An object larger than a quarter chunk gets a mapping of its own, given
 * back as soon as it is deleted. */
Test(store, large_object_returns_its_memory) {
  ck_store_t *s = ck_store_new();
  cr_assert_eq(upsert(s, obj("a", "small", 1, NULL, 100)), CK_STORE_ADDED);
  ck_store_mem_t before, big, after;
  ck_store_mem(s, &before);
  cr_assert_eq(upsert(s, obj("a", "big", 2, NULL, 3 * 1024 * 1024)), CK_STORE_ADDED);
  ck_store_mem(s, &big);
  cr_assert_geq(big.mapped, before.mapped + 3 * 1024 * 1024);
  json_t *o = ck_store_get(s, "a/big");
  cr_assert_eq(strlen(json_string_value(json_object_get(o, "data"))), 3 * 1024 * 1024);
  json_decref(o);
  cr_assert_eq(ck_store_delete(s, "a/big", 0, NULL), 1);
  ck_store_mem(s, &after);
  cr_assert_eq(after.mapped, before.mapped);
  cr_assert_eq(after.live, before.live);
  cr_assert_eq(rv_of(s, "a/small"), 1);
  ck_store_free(s);
}

Test(pool, chunks_unmapped_when_empty) {
  ck_pool_t p = {0};
  ck_pool_chunk_t *c[2000];
  void *b[2000];
  for (int i = 0; i < 2000; i++) {
    b[i] = ck_pool_alloc(&p, 1000, &c[i]);
    cr_assert_not_null(b[i]);
    cr_assert_eq((uintptr_t)b[i] % 16, 0);
    memset(b[i], i & 0xff, 1000);
  }
  size_t full = p.mapped;
  cr_assert_geq(full, 2000 * 1000);
  cr_assert_eq(p.live, 2000 * 1008);
  /* Every block keeps its bytes while others are written. */
  for (int i = 0; i < 2000; i++)
    cr_assert_eq(((unsigned char *)b[i])[999], i & 0xff);
  for (int i = 0; i < 1900; i++)
    ck_pool_release(&p, c[i], 1000);
  cr_assert_lt(p.mapped, full / 5, "mapped %zu of %zu", p.mapped, full);
  cr_assert_eq(p.live, 100 * 1008);
  for (int i = 1900; i < 2000; i++)
    ck_pool_release(&p, c[i], 1000);
  cr_assert_eq(p.live, 0);
  ck_pool_clear(&p);
  cr_assert_eq(p.mapped, 0);
  cr_assert_null(ck_pool_alloc(&p, 0, &c[0]));

  /* Wasteful: a third dead and at least the slack. 100 blocks in one
   * chunk, a tenth released: not yet; half released: yes, unless the
   * slack asks for more than is dead. */
  for (int i = 0; i < 100; i++)
    cr_assert_not_null(ck_pool_alloc(&p, 1000, &c[i]));
  for (int i = 0; i < 10; i++)
    ck_pool_release(&p, c[i], 1000);
  cr_assert_not(ck_pool_wasteful(&p, 0));
  for (int i = 10; i < 50; i++)
    ck_pool_release(&p, c[i], 1000);
  cr_assert(ck_pool_wasteful(&p, 0));
  cr_assert(ck_pool_wasteful(&p, 50 * 1008));
  cr_assert_not(ck_pool_wasteful(&p, 50 * 1008 + 1));
  ck_pool_clear(&p);
}

/* Member names are stored as one-byte tokens: every object reads back
 * equal, whatever its strings hold (quotes, control characters, text that
 * looks like a token), and a typical object takes less than its JSON. */
Test(store, tokens_round_trip) {
  ck_store_t *s = ck_store_new();
  json_t *k8s = json_loads(
      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\",\"namespace\":\"a\","
      "\"uid\":\"6eb8d6be-9f40-4c5f-83f5-000000000001\",\"resourceVersion\":\"7\",\"generation\":3,"
      "\"creationTimestamp\":\"2026-12-06T12:00:00Z\",\"deletionTimestamp\":\"2026-12-06T12:00:01Z\","
      "\"deletionGracePeriodSeconds\":30,\"labels\":{\"app.kubernetes.io/name\":\"x\"},"
      "\"annotations\":{\"kubernetes.io/description\":\"\\\"name\\\":\\\"q\\\"\"},"
      "\"finalizers\":[\"f\"],\"ownerReferences\":[{\"uid\":\"u\",\"controller\":true,"
      "\"blockOwnerDeletion\":true}]},\"spec\":{\"containers\":[{\"image\":\"i\",\"name\":\"c\"}],"
      "\"data\":{\"value\":\"v\"}},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
      "\"reason\":\"r\",\"message\":\"m\\u0001\\n\\u001f\",\"lastTransitionTime\":\"t\","
      "\"observedGeneration\":3}]}}",
      0, NULL);
  cr_assert_not_null(k8s);
  json_t *odd = json_pack("{s:{s:s,s:s,s:s},s:s,s:s}", "metadata", "name", "\"name\":\"", "namespace",
                          "a", "resourceVersion", "1", "\"kind\":\"", "\x01\x1f", "t", "\"status\":{");
  cr_assert_not_null(odd);
  cr_assert_eq(ck_store_upsert(s, k8s, 1, false, false, NULL), CK_STORE_ADDED);
  cr_assert_eq(ck_store_upsert(s, odd, 1, false, false, NULL), CK_STORE_ADDED);
  char *text = json_dumps(k8s, JSON_COMPACT), *text2 = json_dumps(odd, JSON_COMPACT);
  cr_assert_eq(ck_store_bytes(s), strlen(text) + strlen(text2), "bytes count the JSON as read back");
  ck_store_mem_t m;
  ck_store_mem(s, &m);
  json_t *g = ck_store_get(s, "a/p");
  cr_assert(json_equal(g, k8s), "read back: %s", json_dumps(g, JSON_COMPACT));
  json_decref(g);
  g = ck_store_get(s, "a/\"name\":\"");
  cr_assert(json_equal(g, odd));
  json_decref(g);
  /* The Pod's 1,000-odd bytes of JSON take fewer bytes of pool, header
   * and key included. */
  ck_store_delete(s, "a/\"name\":\"", 0, NULL);
  ck_store_mem(s, &m);
  cr_assert_lt(m.live, strlen(text), "pool %zu for %zu bytes of JSON", m.live, strlen(text));
  free(text);
  free(text2);
  json_decref(k8s);
  json_decref(odd);
  ck_store_free(s);
}

static int append_cb(void *ctx, json_t *o) {
  return json_array_append(ctx, o);
}

/* A snapshot holds what a list gives, in the same order, whether it is
 * parsed on one thread (small) or several (large), for all namespaces or
 * one, and for a namespace with nothing cached. */
Test(store, snapshot_equals_list) {
  ck_store_t *s = ck_store_new();
  char name[32];
  for (int i = 0; i < 3000; i++) {
    snprintf(name, sizeof name, "o-%d", i);
    cr_assert_eq(upsert(s, obj(i % 3 ? "a" : "b", name, i + 1, NULL, (size_t)(i % 50))), CK_STORE_ADDED);
    if (i != 99 && i != 2999)
      continue;
    const char *nss[] = {NULL, "a", "b", "none"};
    for (int k = 0; k < 4; k++) {
      json_t *list = json_array(), *snap = NULL;
      cr_assert_eq(ck_store_list(s, nss[k], append_cb, list), 0);
      cr_assert_eq(ck_store_snapshot(s, nss[k], NULL, &snap), 0);
      cr_assert_eq(json_array_size(snap), json_array_size(list), "%s: %zu vs %zu",
                   nss[k] ? nss[k] : "all", json_array_size(snap), json_array_size(list));
      cr_assert(json_equal(snap, list), "%s differs", nss[k] ? nss[k] : "all");
      json_decref(list);
      json_decref(snap);
    }
  }
  ck_store_free(s);
}

/* Index of the object ns/name in a snapshot, or -1. */
static long find_in(const json_t *snap, const char *name) {
  size_t i;
  json_t *o;
  json_array_foreach(snap, i, o) {
    const char *n = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
    if (n && strcmp(n, name) == 0)
      return (long)i;
  }
  return -1;
}

/* A snapshot with a memo equals one without, in the same order, through
 * adds, updates and deletes; an object whose resourceVersion did not
 * change is the very tree of the memo's last snapshot, a changed one is a
 * fresh parse of its new content, and deleted objects leave the memo. */
Test(store, snapshot_memo_reuses_only_unchanged) {
  ck_store_t *s = ck_store_new();
  ck_store_memo_t *memo = ck_store_memo_new();
  cr_assert_not_null(memo);
  char name[32];
  for (int i = 0; i < 2000; i++) { /* past SNAP_MIN: the first parse is parallel */
    snprintf(name, sizeof name, "o-%d", i);
    cr_assert_eq(upsert(s, obj("a", name, i + 1, NULL, 10)), CK_STORE_ADDED);
  }
  json_t *first = NULL, *second = NULL, *plain = NULL;
  cr_assert_eq(ck_store_snapshot(s, "a", memo, &first), 0);
  cr_assert_eq(ck_store_memo_len(memo), 2000);
  /* o-5 updated (new resourceVersion, new payload), o-7 deleted, o-new added */
  cr_assert_eq(upsert(s, obj("a", "o-5", 5000, NULL, 33)), CK_STORE_UPDATED);
  cr_assert_eq(ck_store_delete(s, "a/o-7", 0, NULL), 1);
  cr_assert_eq(upsert(s, obj("a", "o-new", 5001, NULL, 1)), CK_STORE_ADDED);
  cr_assert_eq(ck_store_snapshot(s, "a", memo, &second), 0);
  cr_assert_eq(ck_store_snapshot(s, "a", NULL, &plain), 0);
  cr_assert(json_equal(second, plain), "a snapshot with the memo differs from one without");
  cr_assert_eq(json_array_size(second), 2000);
  cr_assert_eq(ck_store_memo_len(memo), 2000, "memo holds %zu", ck_store_memo_len(memo));
  cr_assert_eq(find_in(second, "o-7"), -1);
  long o5 = find_in(second, "o-5"), o5_then = find_in(first, "o-5");
  cr_assert_neq(json_array_get(second, (size_t)o5), json_array_get(first, (size_t)o5_then),
                "the updated object was not parsed again");
  cr_assert_eq(strlen(json_string_value(json_object_get(json_array_get(second, (size_t)o5), "data"))), 33);
  long o9 = find_in(second, "o-9"), o9_then = find_in(first, "o-9");
  cr_assert_eq(json_array_get(second, (size_t)o9), json_array_get(first, (size_t)o9_then),
               "an unchanged object was parsed again");
  cr_assert_eq(json_array_get(second, (size_t)o9)->refcount, 3, "snapshots and memo share it");
  /* Another namespace with the same memo: what it no longer sees is forgotten. */
  json_t *none = NULL;
  cr_assert_eq(ck_store_snapshot(s, "none", memo, &none), 0);
  cr_assert_eq(json_array_size(none), 0);
  cr_assert_eq(ck_store_memo_len(memo), 0);
  ck_store_memo_clear(memo);
  ck_store_memo_clear(memo); /* twice is fine */
  json_decref(first);
  json_decref(second);
  json_decref(plain);
  json_decref(none);
  ck_store_memo_free(memo);
  ck_store_memo_free(NULL);
  ck_store_free(s);
}

/* What jansson holds, counted through its allocator hooks (each test runs
 * in its own process, so the hooks stay within this one). */
static atomic_size_t js_live, js_peak_in_reduce;
static void *js_malloc(size_t n) {
  size_t *p = malloc(n + sizeof(max_align_t));
  if (!p)
    return NULL;
  *p = n;
  atomic_fetch_add(&js_live, n);
  return (char *)p + sizeof(max_align_t);
}
static void js_free(void *q) {
  if (!q)
    return;
  size_t *p = (size_t *)(void *)((char *)q - sizeof(max_align_t));
  atomic_fetch_sub(&js_live, *p);
  free(p);
}

typedef struct reduce_ctx {
  size_t calls;
  bool keep_whole; /* answer NULL: keep the parse */
} reduce_ctx_t;

/* Reduces each object to its name as a string, and notes the most
 * jansson held while it ran. */
static json_t *reduce_to_name(void *ctx, json_t *o) {
  reduce_ctx_t *rc = ctx;
  rc->calls++;
  size_t live = atomic_load(&js_live);
  if (live > atomic_load(&js_peak_in_reduce))
    atomic_store(&js_peak_in_reduce, live);
  if (rc->keep_whole)
    return NULL;
  return json_string(json_string_value(json_object_get(json_object_get(o, "metadata"), "name")));
}

/* A memo with a reducer keeps and hands what the reducer gives for each
 * object it parses, reduces each version once, keeps the parse when the
 * reducer gives NULL, and never holds the trees of a large cache at once
 * (a batch at a time: at most SNAP_MIN trees). */
Test(store, snapshot_memo_reduce) {
  json_set_alloc_funcs(js_malloc, js_free);
  ck_store_t *s = ck_store_new();
  ck_store_memo_t *memo = ck_store_memo_new();
  cr_assert_not_null(memo);
  char name[32];
  enum { N = 6000 };
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "o-%d", i);
    cr_assert_eq(upsert(s, obj("a", name, i + 1, NULL, 300)), CK_STORE_ADDED);
  }
  size_t before = atomic_load(&js_live);
  json_t *plain = NULL;
  cr_assert_eq(ck_store_snapshot(s, "a", NULL, &plain), 0);
  size_t whole = atomic_load(&js_live) - before; /* all trees at once */
  json_decref(plain);
  reduce_ctx_t rc = {0};
  ck_store_memo_set_reduce(memo, reduce_to_name, &rc);
  json_t *first = NULL, *second = NULL, *third = NULL;
  cr_assert_eq(ck_store_snapshot(s, "a", memo, &first), 0);
  cr_assert_eq(rc.calls, N);
  cr_assert_eq(json_array_size(first), N);
  cr_assert_lt(atomic_load(&js_peak_in_reduce) - before, whole / 2,
               "held %zu bytes while reducing; all trees are %zu",
               atomic_load(&js_peak_in_reduce) - before, whole);
  long o5 = find_in(first, "o-5");
  cr_assert_lt(o5, 0, "a reduced object is still a tree");
  size_t i;
  json_t *v;
  json_array_foreach(first, i, v) cr_assert(json_is_string(v), "item %zu is not reduced", i);
  /* Unchanged: the same reductions, no call; changed: reduced once more. */
  cr_assert_eq(upsert(s, obj("a", "o-5", N + 5, NULL, 10)), CK_STORE_UPDATED);
  cr_assert_eq(ck_store_snapshot(s, "a", memo, &second), 0);
  cr_assert_eq(rc.calls, N + 1);
  json_t *then = json_object(); /* name -> its reduction in the first */
  json_array_foreach(first, i, v) json_object_set(then, json_string_value(v), v);
  size_t same = 0;
  json_array_foreach(second, i, v) same += json_object_get(then, json_string_value(v)) == v;
  cr_assert_eq(same, N - 1, "%zu of %d handed again", same, N);
  json_decref(then);
  /* A reducer that gives NULL: the parse itself is kept and handed. */
  rc.keep_whole = true;
  cr_assert_eq(upsert(s, obj("a", "o-6", N + 6, NULL, 10)), CK_STORE_UPDATED);
  cr_assert_eq(ck_store_snapshot(s, "a", memo, &third), 0);
  cr_assert_eq(rc.calls, N + 2);
  cr_assert_geq(find_in(third, "o-6"), 0, "kept whole, yet not a tree");
  /* get and remember reduce too. */
  rc.keep_whole = false;
  cr_assert_eq(upsert(s, obj("a", "o-7", N + 7, NULL, 10)), CK_STORE_UPDATED);
  json_t *g = ck_store_get_memo(s, "a/o-7", memo);
  cr_assert(json_is_string(g) && strcmp(json_string_value(g), "o-7") == 0);
  json_t *w = obj("a", "o-8", N + 8, NULL, 10);
  ck_store_memo_remember(memo, "a/o-8", w);
  cr_assert_eq(upsert(s, w), CK_STORE_UPDATED);
  json_t *g8 = ck_store_get_memo(s, "a/o-8", memo);
  cr_assert(json_is_string(g8) && strcmp(json_string_value(g8), "o-8") == 0);
  cr_assert_eq(rc.calls, N + 4);
  json_decref(g);
  json_decref(g8);
  json_decref(first);
  json_decref(second);
  json_decref(third);
  ck_store_memo_free(memo);
  ck_store_free(s);
  cr_assert_eq(atomic_load(&js_live), 0, "jansson still holds %zu bytes", atomic_load(&js_live));
  json_set_alloc_funcs(malloc, free);
}

/* A get with a memo parses each version once: the same version is the
 * memo's tree, a new one a fresh parse equal to a plain get; what was
 * remembered after a write is handed out while the store holds that
 * version, and never once the store holds another. */
Test(store, get_memo_parses_each_version_once) {
  ck_store_t *s = ck_store_new();
  ck_store_memo_t *memo = ck_store_memo_new();
  cr_assert_not_null(memo);
  cr_assert_null(ck_store_get_memo(s, "a/cm", memo), "not cached: NULL");
  cr_assert_eq(upsert(s, obj("a", "cm", 10, NULL, 100)), CK_STORE_ADDED);
  json_t *g1 = ck_store_get_memo(s, "a/cm", memo);
  json_t *g2 = ck_store_get_memo(s, "a/cm", memo);
  json_t *plain = ck_store_get(s, "a/cm");
  cr_assert_not_null(g1);
  cr_assert_eq(g1, g2, "the same version was parsed again");
  cr_assert_neq(g1, plain);
  cr_assert(json_equal(g1, plain));
  cr_assert_eq(upsert(s, obj("a", "cm", 11, NULL, 200)), CK_STORE_UPDATED);
  json_t *g3 = ck_store_get_memo(s, "a/cm", memo);
  cr_assert_neq(g3, g1, "a new version came from the memo");
  cr_assert_eq(strlen(json_string_value(json_object_get(g3, "data"))), 200);
  /* Remembered as written (version 12), then cached: handed out as is. */
  json_t *w = obj("a", "cm", 12, NULL, 300);
  ck_store_memo_remember(memo, "a/cm", w);
  cr_assert_eq(upsert(s, json_incref(w)), CK_STORE_UPDATED);
  json_t *g4 = ck_store_get_memo(s, "a/cm", memo);
  cr_assert_eq(g4, w, "the remembered write was parsed again");
  /* Remembered, but the store took another version: never handed out. */
  json_t *w2 = obj("a", "cm", 13, NULL, 400);
  ck_store_memo_remember(memo, "a/cm", w2);
  cr_assert_eq(upsert(s, obj("a", "cm", 14, NULL, 500)), CK_STORE_UPDATED);
  json_t *g5 = ck_store_get_memo(s, "a/cm", memo);
  cr_assert_neq(g5, w2);
  cr_assert_eq(strlen(json_string_value(json_object_get(g5, "data"))), 500);
  /* No resourceVersion: nothing to key it by, not remembered. */
  json_t *norv = json_pack("{s:{s:s,s:s}}", "metadata", "name", "x", "namespace", "a");
  ck_store_memo_remember(memo, "a/x", norv);
  cr_assert_eq(ck_store_memo_len(memo), 1);
  json_t *g6 = ck_store_get_memo(s, "a/cm", NULL); /* no memo: a plain get */
  cr_assert(json_equal(g6, g5));
  cr_assert_neq(g6, g5);
  for (json_t **p = (json_t *[]){g1, g2, plain, g3, w, g4, w2, g5, norv, g6, NULL}; *p; p++)
    json_decref(*p);
  ck_store_memo_free(memo);
  ck_store_free(s);
}

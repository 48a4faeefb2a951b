/* The aws-auth reconciler. Two controllers share the AWSAuth informer:
 *  - "aws-auth" (one worker) merges the whole set into the ConfigMap: every
 *    relevant change of an AWSAuth object or of aws-auth queues its one key,
 *    so a burst of changes coalesces into a few merges (the core in merge.c
 *    decides; this file reads, writes and reports);
 *  - "aws-auth-objects" (several workers) does the per-object follow-up a
 *    merge asks for: add the finalizer, write the status and Events, remove
 *    the finalizer once the object's entries are gone. Its keys come only
 *    from the merge, so that work never delays the next ConfigMap write.
 * The ConfigMap is read from the informer's cache (fed with our own writes
 * at once); a 409 reads it afresh from the apiserver and merges again. */
#include "operator.h"

#include "awsauth_crd.h"
#include "statcache.h"
#include "crdkit/crd.h"
#include "crdkit/log.h"
#include "crdkit/manager.h"
#include "crdkit/metrics.h"
#include "crdkit/objects.h"
#include "util/strmap.h"
#include "util/timeutil.h"

#include <errno.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COMP "aws-auth"
#define THE_KEY "aws-auth" /* every merge-relevant event maps to this one key */

/* Workers of the per-object controller: finalizer and status requests in
 * flight at once (one HTTP/2 connection carries them all). */
#define OBJECT_WORKERS 8
/* A merge that wrote while more events kept arriving is in a burst: the
 * next merge waits first, so a burst of N objects costs a few ConfigMap
 * writes, not one per merge. The wait is BURST_PAUSE_MS plus twice what
 * the last merge took, at most BURST_PAUSE_MAX_MS: merging a large set
 * costs more, so it is done less often, and the merges of a burst take at
 * most about a third of a core away from the apiserver serving it. A
 * single change (nothing arriving while its merge runs) is merged at once. */
#define BURST_PAUSE_MS 100
#define BURST_PAUSE_MAX_MS 500
/* ... but the wait ends once no event has come for this long: the end of
 * a burst is merged at once, not a full pause after its last change. */
#define BURST_QUIET_MS 50
/* How soon a merge looks again when aws-auth is gone but its delete event
 * (which brings the last state) has not been handled yet. */
#define DELETE_WAIT_MS 20
/* The merge is busy while its writes come less than this far apart (a
 * burst, or a client changing objects as fast as we apply them). Per-object
 * work then waits, so the apiserver serves the changes first and a status
 * changed many times is written once. */
#define BUSY_MS 200
/* The merge's caches (parsed lists and entries, each object's parse, the
 * parse of aws-auth) make a merge that follows another cheap: kept while
 * merges follow each other, freed after this long without a change. */
#define CACHE_IDLE_MS 1000
/* ... but no longer than this: older per-object work goes through, one
 * object at a time and at most one per BUSY_PACE_MS while the merge stays
 * busy (every object's work is two writes the apiserver must also serve).
 * Finalizer releases of deleted objects never wait. */
#define OBJECT_MAX_WAIT_MS 5000
#define BUSY_PACE_MS 10
/* The operator's own writes less than this apart form one series: the
 * history keeps the state before the series, not each step of it. */
#define HISTORY_SERIES_MS 1000
/* The history ConfigMap stays under the 1 MiB data limit with this margin. */
#define HISTORY_MAX_BYTES ((size_t)1000 * 1000)

typedef struct history_item history_item_t;

/* What one merge concluded for every object (shared by its post records). */
typedef struct outcome {
  atomic_int refs;
  aa_block_t blocked;
  char *blocked_msg; /* NULL unless blocked */
  char *write_err;   /* NULL unless the write failed */
  bool clean;        /* the ConfigMap holds the result (written or nothing to write) */
} outcome_t;

/* Per-object work a merge asks for, keyed by "ns/name". */
typedef struct post {
  char *key;
  aa_obj_status_t st; /* taken from the merge result */
  outcome_t *oc;
  bool release; /* deleting and its entries are gone: remove the finalizer */
  int64_t since; /* when this object first had work waiting (ck_now_ms) */
  bool retry;    /* put back after a failure: its key waits for a backoff */
} post_t;

typedef struct op {
  const aa_run_opts_t *o;
  const char *cm_ns, *cm_name;
  ck_resource_t res;
  ck_informer_t *objs, *cms;
  ck_controller_t *merge_ctl, *obj_ctl;
  ck_manager_t *m;
  pthread_mutex_t mu;
  json_t *last_known; /* the last state of aws-auth once deleted (mu): while it
                         exists, the informer's cache holds it */
  bool cm_present;    /* aws-auth exists as far as the events told (mu) */
  json_t *history;    /* the history ConfigMap as last written (history thread only),
                         so a save needs no GET first */
  ck_client_t *history_client;
  pthread_t history_tid;
  bool history_started;
  pthread_mutex_t hmu; /* the history queue */
  pthread_cond_t hcond;
  history_item_t *hq_head, *hq_tail;
  int hq_len;
  bool hq_stop;
  char written_rv[64]; /* resourceVersion of our last aws-auth write (mu) */
  unsigned char writing[32]; /* write_digest of what we last wrote or are writing (mu) */
  bool writing_set;
  aa_cache_t *cache;   /* parses kept while merges follow (merge worker) */
  ck_informer_memo_t *memo; /* AWSAuth (stand-ins once read), same (merge worker) */
  ck_informer_memo_t *cm_memo; /* parsed aws-auth, same (merge worker) */
  ck_strmap_t posts;   /* key -> post_t (mu) */
  ck_strmap_t released; /* uid -> strdup'ed uid of objects whose finalizer we
                           removed after their merge; their delete needs none (mu) */
  atomic_ullong events; /* merge-relevant events seen */
  atomic_llong last_event_ms; /* ck_now_ms() of the last of them */
  atomic_llong last_event_us; /* the same in ck_now_us(), for the merge's timings */
  bool burst;           /* the last merge wrote while events kept coming */
  bool idle_pending;    /* see idle_events */
  atomic_llong busy_until;   /* ck_now_ms() until which per-object work waits */
  int64_t last_write_ms;     /* end of our last aws-auth write (merge worker) */
  int64_t last_merge_ms;     /* how long the last merge took (merge worker) */
  /* The last merge finished with nothing left to do (idle_pending, next
   * to burst): unless events come, its caches go once CACHE_IDLE_MS have
   * passed (merge worker). */
  unsigned long long idle_events; /* events when that merge began */
  int64_t idle_since_ms;
  pthread_mutex_t turn;      /* per-object work one at a time while busy */
  atomic_int since_trim;     /* per-object reconciles since the last malloc_trim */
  ck_series_t *writes, *conflicts, *repairs, *parse_errors, *owned, *foreign, *invalid,
      *conflicted, *bytes, *blocked;
} op_t;

/* Object keys come only from the merge (queue_posts), never from events. */
static bool no_object_keys(void *ctx, ck_informer_event_t ev, const json_t *old,
                           const json_t *obj) {
  (void)ctx;
  (void)ev;
  (void)old;
  (void)obj;
  return false;
}

static void merge_soon(op_t *op) {
  int64_t us = ck_now_us();
  atomic_store(&op->last_event_us, us);
  atomic_store(&op->last_event_ms, us / 1000);
  atomic_fetch_add(&op->events, 1);
  ck_controller_enqueue(op->merge_ctl, THE_KEY);
}

static bool same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* An AWSAuth event matters to the merge unless it only touched what the
 * merge does not read: status (our own status writes), labels,
 * annotations, or the arrival of our finalizer. */
static void on_object(void *ctx, ck_informer_event_t ev, const json_t *old, const json_t *obj) {
  op_t *op = ctx;
  /* The delete that follows our own finalizer release: the merge that
   * released it already wrote aws-auth without the object's entries. */
  if (ev == CK_INFORMER_DELETE && ck_obj_uid(obj)) {
    pthread_mutex_lock(&op->mu);
    char *uid = ck_strmap_del(&op->released, ck_obj_uid(obj));
    pthread_mutex_unlock(&op->mu);
    if (uid) {
      free(uid);
      return;
    }
  }
  if (ev == CK_INFORMER_UPDATE && old &&
      ck_obj_generation(old) == ck_obj_generation(obj) &&
      ck_obj_is_deleting(old) == ck_obj_is_deleting(obj) &&
      same_str(ck_obj_uid(old), ck_obj_uid(obj)) &&
      !(ck_finalizer_has(old, AA_DEFAULT_FINALIZER) && !ck_finalizer_has(obj, AA_DEFAULT_FINALIZER)))
    return;
  merge_soon(op);
}

static int digest_cb(const char *buffer, size_t size, void *data) {
  return EVP_DigestUpdate(data, buffer, size) == 1 ? 0 : -1;
}

/* n, then the n bytes: no two sequences of fields hash alike. */
static int digest_bytes(EVP_MD_CTX *md, const char *p, size_t n) {
  uint64_t len = n;
  return EVP_DigestUpdate(md, &len, sizeof len) == 1 && EVP_DigestUpdate(md, p, n) == 1 ? 0 : -1;
}

/* A member hashed from its strings as they are, keys sorted: a ConfigMap's
 * data is a map of strings, which need no JSON encoding to hash (encoding
 * it first was 15% of a merge's CPU in a churn of 400 objects). */
static int digest_member(EVP_MD_CTX *md, const json_t *v) {
  if (!v)
    return EVP_DigestUpdate(md, "A", 1) == 1 ? 0 : -1;
  if (json_is_string(v))
    return EVP_DigestUpdate(md, "S", 1) == 1
               ? digest_bytes(md, json_string_value(v), json_string_length(v))
               : -1;
  if (json_is_object(v)) {
    size_t n = json_object_size(v), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys || EVP_DigestUpdate(md, "O", 1) != 1) {
      free(keys);
      return -1;
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) keys[i++] = k;
    qsort(keys, n, sizeof *keys, aa_cmp_strp);
    int rc = 0;
    for (i = 0; i < n && rc == 0; i++)
      rc = digest_bytes(md, keys[i], strlen(keys[i])) ? -1
                                                       : digest_member(md, json_object_get(v, keys[i]));
    free(keys);
    return rc;
  }
  if (EVP_DigestUpdate(md, "J", 1) != 1) /* anything else: its JSON */
    return -1;
  return json_dump_callback(v, digest_cb, md, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* SHA-256 of what makes an aws-auth ours: data, binaryData and the
 * ownership annotation (a digest rather than a copy: aws-auth can be a
 * megabyte). Returns false when it cannot be computed. */
static bool write_digest(const json_t *cm, unsigned char out[32]) {
  const EVP_MD *sha = aa_sha256_md();
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  const json_t *ann = json_object_get(json_object_get(json_object_get(cm, "metadata"), "annotations"),
                                      AA_OWNERS_ANNOTATION);
  bool ok = md && sha && EVP_DigestInit_ex(md, sha, NULL) == 1 &&
            digest_member(md, json_object_get(cm, "data")) == 0 &&
            digest_member(md, json_object_get(cm, "binaryData")) == 0 &&
            digest_member(md, ann) == 0 && EVP_DigestFinal_ex(md, out, NULL) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

/* Every aws-auth event but the echo of our own write (already merged):
 * an object whose data and ownership annotation are what we wrote last
 * (or are writing now: the watch event may come before the response)
 * needs no merge. */
static void on_configmap(void *ctx, ck_informer_event_t ev, const json_t *old,
                         const json_t *obj) {
  op_t *op = ctx;
  (void)old;
  if (ev == CK_INFORMER_DELETE) {
    /* Kept to recreate it with the entries nobody owns (the cache no
     * longer has it). */
    json_t *copy = json_deep_copy(obj);
    pthread_mutex_lock(&op->mu);
    if (copy) {
      json_decref(op->last_known);
      op->last_known = copy;
    }
    op->cm_present = false;
    pthread_mutex_unlock(&op->mu);
  } else {
    pthread_mutex_lock(&op->mu);
    op->cm_present = true;
    json_decref(op->last_known); /* it is back: the cache has it */
    op->last_known = NULL;
    bool want = op->writing_set;
    pthread_mutex_unlock(&op->mu);
    unsigned char d[32];
    bool ours = want && write_digest(obj, d);
    if (ours) {
      pthread_mutex_lock(&op->mu);
      ours = op->writing_set && memcmp(d, op->writing, sizeof d) == 0;
      pthread_mutex_unlock(&op->mu);
    }
    if (ours)
      return;
  }
  merge_soon(op);
}

/* ---- history ------------------------------------------------------------- */

long aa_history_rev(const char *k) {
  if (strncmp(k, "rev-", 4) != 0 || k[4] < '0' || k[4] > '9')
    return -1;
  char *end = NULL;
  errno = 0;
  long n = strtol(k + 4, &end, 10);
  return errno == 0 && *end == '\0' ? n : -1;
}

/* Keep the previous data of aws-auth in <name>-history (keys rev-<seq>,
 * the newest `keep`), so `crdkit aws-auth restore` can put it back. */
static int history_save(op_t *op, ck_client_t *c, const json_t *live, ck_error_t *err) {
  char hname[300];
  snprintf(hname, sizeof hname, "%s-history", op->cm_name);
  int keep = op->o->history > 0 ? op->o->history : 10;
  json_t *data = json_object_get(live, "data");
  char *text = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
  if (!text)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  for (int attempt = 0; attempt < 5; attempt++) {
    json_t *h = NULL;
    ck_error_t e = {0};
    int rc = 0;
    bool create = false;
    if (op->history) { /* ours from the last save; a conflict below reads it afresh */
      h = json_deep_copy(op->history);
      rc = h ? 0 : ck_error_set(&e, CK_ENOMEM, "out of memory");
    } else {
      rc = ck_object_get(c, &ck_res_configmaps, op->cm_ns, hname, NULL, &h, &e);
      create = rc == CK_EAPI && ck_error_is_not_found(&e);
    }
    if (rc != 0 && !create) {
      free(text);
      *err = e;
      return rc;
    }
    if (create)
      h = json_pack("{s:s,s:s,s:{s:s,s:s},s:{}}", "apiVersion", "v1", "kind", "ConfigMap",
                    "metadata", "name", hname, "namespace", op->cm_ns, "data");
    json_t *hd = json_object_get(h, "data");
    if (!json_is_object(hd)) {
      hd = json_object();
      json_object_set_new(h, "data", hd);
    }
    long top = 0;
    const char *k;
    json_t *v;
    json_object_foreach(hd, k, v) {
      long n = aa_history_rev(k);
      if (n > top)
        top = n;
    }
    char nk[32];
    snprintf(nk, sizeof nk, "rev-%06ld", top + 1);
    json_object_set_new(hd, nk, json_string(text));
    /* The newest `keep` revisions, fewer when they would not fit in one
     * ConfigMap (1 MiB of data): the oldest (lowest rev-<seq>) go first. */
    size_t total = 0, nrev = 0;
    json_object_foreach(hd, k, v) {
      total += strlen(k) + json_string_length(v);
      nrev += aa_history_rev(k) >= 0;
    }
    while (nrev > 1 && (nrev > (size_t)keep || total > HISTORY_MAX_BYTES)) {
      const char *oldest = NULL;
      long low = 0;
      json_object_foreach(hd, k, v) {
        long n = aa_history_rev(k);
        if (n >= 0 && (!oldest || n < low)) {
          oldest = k;
          low = n;
        }
      }
      if (!oldest) /* never while nrev counts the keys picked from (for the analyzer) */
        break;
      total -= strlen(oldest) + json_string_length(json_object_get(hd, oldest));
      json_object_del(hd, oldest);
      nrev--;
    }
    if (total > HISTORY_MAX_BYTES) {
      json_decref(h);
      free(text);
      return ck_error_set(err, CK_ETOOBIG,
                          "%s/%s: the previous data alone (%zu bytes) does not fit in a ConfigMap",
                          op->cm_ns, hname, total);
    }
    json_t *out = NULL;
    rc = create ? ck_object_create(c, &ck_res_configmaps, op->cm_ns, h, NULL, &out, &e)
                : ck_object_replace(c, &ck_res_configmaps, op->cm_ns, hname, h, NULL, &out, &e);
    json_decref(h);
    json_decref(op->history);
    op->history = rc == 0 ? out : NULL;
    if (rc != 0)
      json_decref(out);
    if (rc == 0) {
      free(text);
      return 0;
    }
    if (!(ck_error_is_conflict(&e) || ck_error_is_already_exists(&e))) {
      free(text);
      *err = e;
      return rc;
    }
  }
  free(text);
  return ck_error_set(err, CK_EAPI, "%s/%s: kept conflicting", op->cm_ns, hname);
}

/* ---- status ---------------------------------------------------------------- */

/* The five conditions of an object's status, computed once for both
 * building the status and checking whether the cached one already says it. */
typedef struct conds {
  ck_condition_t c[AA_NCONDS]; /* in the order of aa_cond_types */
  char ready_msg[512];
} conds_t;

static void conds_compute(const op_t *op, const aa_obj_status_t *st, const outcome_t *oc,
                          conds_t *out) {
  int64_t g = st->generation;
  const char *write_err = oc->write_err;
  const char *deg = oc->blocked ? oc->blocked_msg : write_err;
  bool ready = st->valid && !st->conflicted && !st->suspended && !deg && oc->clean &&
               !op->o->dry_run;
  const char *reason = "Applied";
  if (!st->valid)
    reason = "Invalid";
  else if (st->conflicted)
    reason = "Conflicted";
  else if (st->suspended)
    reason = "Suspended";
  else if (deg)
    reason = "Degraded";
  else if (op->o->dry_run)
    reason = "DryRun";
  /* cppcheck takes sizeof out->ready_msg for a read of the caller's
   * (uninitialised) buffer. */
  /* cppcheck-suppress ctuuninitvar */
  snprintf(out->ready_msg, sizeof out->ready_msg,
           ready ? "%zu entries in %s/%s" : "%zu entries applied; see the other conditions",
           st->entries, op->cm_ns, op->cm_name);
#define COND(i, on, r, m)                                                                          \
  out->c[i] = (ck_condition_t){.type = aa_cond_types[i], .status = (on) ? "True" : "False",       \
                               .reason = (r), .message = (m) ? (m) : "", .observed_generation = g}
  COND(0 /* Invalid */, !st->valid, st->valid ? "Valid" : "InvalidSpec", st->invalid_msg);
  COND(1 /* Conflicted */, st->conflicted, st->conflicted ? "ArnConflict" : "NoConflict",
       st->conflict_msg);
  COND(2 /* Suspended */, st->suspended, st->suspended ? "Suspended" : "Active", NULL);
  COND(3 /* Degraded */, deg != NULL,
       oc->blocked ? aa_block_reason(oc->blocked) : (write_err ? "WriteFailed" : "Healthy"), deg);
  COND(4 /* Ready */, ready, reason, out->ready_msg);
#undef COND
}

/* Build on the cached status (see statcache.h): the conditions keep their
 * lastTransitionTime unless their status flips. */
static json_t *build_status(const json_t *obj, const aa_obj_status_t *st, const conds_t *cs) {
  json_t *s = aa_status_base(json_object_get(obj, "status"));
  if (!s)
    return NULL;
  json_object_set_new(s, "observedGeneration", json_integer(st->generation));
  json_object_set_new(s, "type", json_string(aa_kind_key(st->kind)));
  json_object_set_new(s, "entries", json_integer((json_int_t)st->entries));
  json_object_set_new(s, "arns", st->arns ? json_incref(st->arns) : json_array());
  json_object_set_new(s, "warnings", st->warnings ? json_incref(st->warnings) : json_array());
  for (int i = 0; i < AA_NCONDS; i++)
    ck_condition_set(s, &cs->c[i], 0);
  return s;
}

/* Whether an object's status already says what build_status would write
 * with the conditions cs: `have`, the digest of its status as cached
 * (aa_obj_status_digest), against the digest of what the merge decided (a
 * merge checks every object, so nothing is built). A digest that could not
 * be computed ("") says "not current": one write too many, never one too
 * few. */
static bool status_current(const char *have, const aa_obj_status_t *st, const conds_t *cs) {
  aa_status_want_t w = {.generation = st->generation, .type = aa_kind_key(st->kind),
                        .entries = (int64_t)st->entries, .arns = st->arns,
                        .warnings = st->warnings};
  for (int i = 0; i < AA_NCONDS; i++)
    w.c[i] = cs->c[i];
  char want[33];
  return have[0] && aa_status_want_digest(&w, want) == 0 && strcmp(want, have) == 0;
}

/* ---- the reconcile ------------------------------------------------------- */

static void log_diff(op_t *op, const json_t *live, const aa_result_t *r) {
  json_t *d = json_object_get(live, "data");
  const char *roles = json_string_value(json_object_get(d, "mapRoles"));
  const char *users = json_string_value(json_object_get(d, "mapUsers"));
  if (r->map_roles && (!roles || strcmp(roles, r->map_roles) != 0))
    CK_INFO(COMP, op->cm_name, "dry-run: mapRoles would change\n--- live\n%s\n+++ new\n%s",
            roles ? roles : "", r->map_roles);
  if (r->map_users && (!users || strcmp(users, r->map_users) != 0))
    CK_INFO(COMP, op->cm_name, "dry-run: mapUsers would change\n--- live\n%s\n+++ new\n%s",
            users ? users : "", r->map_users);
}

/* ---- per-object work ------------------------------------------------------ */

static void outcome_unref(outcome_t *oc) {
  if (oc && atomic_fetch_sub(&oc->refs, 1) == 1) {
    free(oc->blocked_msg);
    free(oc->write_err);
    free(oc);
  }
}

static void post_free(post_t *p) {
  if (!p)
    return;
  aa_obj_status_clear(&p->st);
  outcome_unref(p->oc);
  free(p->key);
  free(p);
}

/* Keep p for a retry unless a newer merge has asked for something else. */
static void post_put_back(op_t *op, post_t *p) {
  pthread_mutex_lock(&op->mu);
  bool newer = ck_strmap_get(&op->posts, p->key) != NULL;
  p->retry = true;
  if (!newer && ck_strmap_put(&op->posts, p->key, p, NULL) != 0)
    newer = true; /* out of memory: the next merge asks again */
  pthread_mutex_unlock(&op->mu);
  if (newer)
    post_free(p);
}

/* Done with p: kept for a retry after a failure, else freed. */
static ck_result_t post_finish(op_t *op, post_t *p, bool failed) {
  if (failed) {
    post_put_back(op, p);
    return ck_fail();
  }
  post_free(p);
  return ck_done();
}

/* The set of released objects. Marking is best effort: without memory the
 * delete just costs one merge more. */
static bool released_mark(op_t *op, const char *uid) {
  char *dup = uid ? strdup(uid) : NULL;
  if (!dup)
    return false;
  void *old = NULL;
  pthread_mutex_lock(&op->mu);
  int rc = ck_strmap_put(&op->released, dup, dup, &old);
  pthread_mutex_unlock(&op->mu);
  free(old);
  if (rc != 0)
    free(dup);
  return rc == 0;
}

static void released_unmark(op_t *op, const char *uid) {
  pthread_mutex_lock(&op->mu);
  free(ck_strmap_del(&op->released, uid));
  pthread_mutex_unlock(&op->mu);
}

/* Reconcile of one object key: what the last merge asked for it. */
static ck_result_t object_do(op_t *op, ck_reconcile_t *rc) {
  const char *key = ck_reconcile_key(rc);
  pthread_mutex_lock(&op->mu);
  post_t *p = ck_strmap_del(&op->posts, key);
  pthread_mutex_unlock(&op->mu);
  if (!p)
    return ck_done();
  ck_client_t *c = ck_reconcile_client(rc);
  json_t *obj = ck_informer_get_key(op->objs, key);
  if (!obj || !same_str(ck_obj_uid(obj), p->st.uid)) { /* gone, or another object now */
    json_decref(obj);
    post_free(p);
    return ck_done();
  }
  ck_error_t err = {0};
  json_t *out = NULL;
  bool failed = false;
  if (p->st.deleting) {
    if (p->release && ck_finalizer_has(obj, AA_DEFAULT_FINALIZER)) {
      /* Marked before the request: the delete event may come before the
       * answer. */
      bool marked = released_mark(op, p->st.uid);
      if (ck_finalizer_remove(c, &op->res, obj, AA_DEFAULT_FINALIZER, &out, &err) != 0) {
        CK_WARN(COMP, key, "removing the finalizer: %s", err.message);
        failed = true;
        if (marked)
          released_unmark(op, p->st.uid);
      }
    }
    json_decref(out);
    json_decref(obj);
    return post_finish(op, p, failed);
  }
  /* The finalizer comes after the entries were written: a delete before it
   * arrives is still seen (the ownership annotation names the entries of
   * an object that no longer exists, and the next merge removes them). */
  if (!ck_obj_is_deleting(obj) && !ck_finalizer_has(obj, AA_DEFAULT_FINALIZER)) {
    if (ck_finalizer_add(c, &op->res, obj, AA_DEFAULT_FINALIZER, &out, &err) == 0 && out) {
      ck_informer_observe(op->objs, out);
      json_decref(obj);
      obj = out;
      out = NULL;
    } else {
      json_decref(out);
      out = NULL;
      if (ck_error_is_not_found(&err)) {
        json_decref(obj);
        post_free(p);
        return ck_done();
      }
      CK_WARN(COMP, key, "adding the finalizer: %s", err.message);
      failed = true;
    }
  }
  conds_t cs;
  conds_compute(op, &p->st, p->oc, &cs);
  char have[33];
  bool changed = aa_obj_status_digest(obj, have) != 0 || !status_current(have, &p->st, &cs);
  json_t *status = changed ? build_status(obj, &p->st, &cs) : NULL;
  if (!changed) {
    /* only the finalizer was missing */
  } else if (!status) {
    failed = true;
  } else if (ck_status_update(c, &op->res, obj, status, &out, &err) == 0) {
    if (out && out != obj)
      ck_informer_observe(op->objs, out);
  } else if (!ck_error_is_not_found(&err)) {
    if (!ck_error_is_conflict(&err))
      CK_WARN(COMP, key, "status: %s", err.message);
    else /* the object changed since it was read: normal, retried */
      CK_DEBUG(COMP, key, "status: %s; retrying", err.message);
    failed = true;
  }
  json_decref(out);
  if (changed && status) { /* Events once per change, not once per merge */
    if (!p->st.valid)
      ck_reconcile_event(rc, obj, "Warning", "Invalid", "%s", p->st.invalid_msg);
    else if (p->st.conflicted)
      ck_reconcile_event(rc, obj, "Warning", "Conflicted", "%s", p->st.conflict_msg);
    else if (p->oc->blocked)
      ck_reconcile_event(rc, obj, "Warning", "Blocked", "%s", p->oc->blocked_msg);
  }
  json_decref(status);
  json_decref(obj);
  return post_finish(op, p, failed);
}

/* After a wave of per-object work (thousands of responses parsed on 8
 * threads), hand the freed heap back once the wave is over. */
static void object_wave_done(op_t *op) {
  if (atomic_fetch_add(&op->since_trim, 1) + 1 < 1000)
    return;
  pthread_mutex_lock(&op->mu);
  bool idle = op->posts.len == 0;
  pthread_mutex_unlock(&op->mu);
  if (idle) {
    atomic_store(&op->since_trim, 0);
    malloc_trim(0);
  }
}

static ck_result_t object_work(void *ctx, ck_reconcile_t *rc) {
  op_t *op = ctx;
  int64_t now = ck_now_ms(), busy = atomic_load(&op->busy_until);
  bool held = false;
  if (now < busy) {
    pthread_mutex_lock(&op->mu);
    post_t *peek = ck_strmap_get(&op->posts, ck_reconcile_key(rc));
    bool deleting = peek && peek->st.deleting;
    int64_t waited = peek ? now - peek->since : 0;
    pthread_mutex_unlock(&op->mu);
    if (peek && !deleting) {
      if (waited < OBJECT_MAX_WAIT_MS) {
        int64_t d = busy - now;
        if (d > OBJECT_MAX_WAIT_MS - waited)
          d = OBJECT_MAX_WAIT_MS - waited;
        return ck_requeue_after(d > 0 ? d : 1);
      }
      pthread_mutex_lock(&op->turn);
      held = true;
    }
  }
  ck_result_t r = object_do(op, rc);
  if (held) {
    ck_sleep_ms(BUSY_PACE_MS);
    pthread_mutex_unlock(&op->turn);
  }
  object_wave_done(op);
  return r;
}

/* After a merge: queue the objects whose finalizer or status must change
 * (each takes its part of the result). Objects already as they should be
 * cost nothing further. */
static void queue_posts(op_t *op, aa_result_t *r, bool clean,
                        const char *write_err) {
  outcome_t *oc = calloc(1, sizeof *oc);
  if (!oc)
    return;
  atomic_init(&oc->refs, 1);
  oc->blocked = r->blocked;
  oc->blocked_msg = r->blocked_msg ? strdup(r->blocked_msg) : NULL;
  oc->write_err = write_err ? strdup(write_err) : NULL;
  oc->clean = clean;
  for (size_t i = 0; i < r->nobjs; i++) {
    aa_obj_status_t *st = &r->objs[i];
    bool release = false, need;
    if (st->deleting) {
      release = st->has_finalizer && !r->blocked && !op->o->dry_run &&
                (st->release_now || (st->release_after_write && clean));
      need = release;
    } else if (!st->has_finalizer) {
      need = true;
    } else {
      conds_t cs;
      conds_compute(op, st, oc, &cs);
      need = !status_current(st->status_digest, st, &cs);
    }
    if (!need)
      continue;
    post_t *p = calloc(1, sizeof *p);
    size_t klen = strlen(st->ns) + strlen(st->name) + 2;
    if (!p || !(p->key = malloc(klen))) {
      free(p);
      continue;
    }
    snprintf(p->key, klen, "%s/%s", st->ns, st->name);
    p->st = *st;
    memset(st, 0, sizeof *st); /* taken: aa_result_free skips it */
    p->release = release;
    p->oc = oc;
    atomic_fetch_add(&oc->refs, 1);
    void *old = NULL;
    p->since = ck_now_ms();
    pthread_mutex_lock(&op->mu);
    int rc = ck_strmap_put(&op->posts, p->key, p, &old);
    if (rc == 0 && old)
      p->since = ((post_t *)old)->since; /* waiting since the first of them */
    /* Queued under the lock: once it is released a worker may take p and
     * free it (and p->key with it). A post still waiting replaced: its key
     * is queued, waiting for its delay (busy) or its backoff, or with a
     * worker about to delay it; it will find this one. Queuing it again
     * would only hand it to a worker that delays it again, once per merge.
     * (A release of a finalizer never waits, and new work does not wait
     * for the backoff of a failure: both queued at once.) */
    if (rc == 0 && (!old || release || ((post_t *)old)->retry))
      ck_controller_enqueue(op->obj_ctl, p->key);
    pthread_mutex_unlock(&op->mu);
    post_free(old);
    if (rc != 0)
      post_free(p);
  }
  outcome_unref(oc);
}

/* ---- the merge ------------------------------------------------------------ */

/* After our write of cm: the cache holds it (observe), so no copy of the
 * deleted state is needed any more. */
static void written(op_t *op, json_t *cm) {
  pthread_mutex_lock(&op->mu);
  json_decref(op->last_known);
  op->last_known = NULL;
  op->cm_present = true;
  const char *rv = ck_obj_resource_version(cm);
  snprintf(op->written_rv, sizeof op->written_rv, "%s", rv ? rv : "");
  pthread_mutex_unlock(&op->mu);
}

/* Whether the previous data goes to the history with this write: always,
 * except when it is our own write of a moment ago (a burst, or a series of
 * writes less than HISTORY_SERIES_MS apart): a series keeps the state before
 * it, not each step (the steps only reflect how the changes happened to be
 * grouped). A write that follows anyone else's change always saves. */
static bool history_wanted(op_t *op, const json_t *live) {
  if (!live)
    return false;
  if (!op->burst && ck_now_ms() - op->last_write_ms >= HISTORY_SERIES_MS)
    return true;
  const char *rv = ck_obj_resource_version(live);
  pthread_mutex_lock(&op->mu);
  bool ours = rv && strcmp(rv, op->written_rv) == 0;
  pthread_mutex_unlock(&op->mu);
  return !ours;
}

/* History saves run on their own thread, in order, off the merge's path:
 * the merge queues the data it is about to replace and goes on with the
 * write. The thread drains the queue before the run ends. A failed save is
 * logged and does not stop the write (as when it ran first). */
#define HISTORY_QUEUE_MAX 64

struct history_item {
  history_item_t *next;
  json_t *live;
};

static void *history_thread(void *arg) {
  op_t *op = arg;
  pthread_mutex_lock(&op->hmu);
  for (;;) {
    while (!op->hq_head && !op->hq_stop)
      pthread_cond_wait(&op->hcond, &op->hmu);
    history_item_t *it = op->hq_head;
    if (!it)
      break; /* stopping and drained */
    op->hq_head = it->next;
    if (!op->hq_head)
      op->hq_tail = NULL;
    op->hq_len--;
    pthread_mutex_unlock(&op->hmu);
    ck_error_t err = {0};
    if (history_save(op, op->history_client, it->live, &err) != 0)
      CK_WARN(COMP, op->cm_name, "saving history: %s", err.message);
    json_decref(it->live);
    free(it);
    pthread_mutex_lock(&op->hmu);
  }
  pthread_mutex_unlock(&op->hmu);
  return NULL;
}

static void history_queue(op_t *op, const json_t *live) {
  history_item_t *it = malloc(sizeof *it);
  if (!it)
    return;
  *it = (history_item_t){.live = json_incref((json_t *)live)};
  pthread_mutex_lock(&op->hmu);
  if (op->hq_len >= HISTORY_QUEUE_MAX) {
    pthread_mutex_unlock(&op->hmu);
    CK_WARN(COMP, op->cm_name, "history: %d saves pending, this revision is not kept",
            HISTORY_QUEUE_MAX);
    json_decref(it->live);
    free(it);
    return;
  }
  if (op->hq_tail)
    op->hq_tail->next = it;
  else
    op->hq_head = it;
  op->hq_tail = it;
  op->hq_len++;
  pthread_cond_signal(&op->hcond);
  pthread_mutex_unlock(&op->hmu);
}

static json_t *read_fresh(op_t *op, ck_client_t *c, int *rc, ck_error_t *err) {
  json_t *live = NULL;
  *rc = ck_object_get(c, &ck_res_configmaps, op->cm_ns, op->cm_name, NULL, &live, err);
  if (*rc != 0 && ck_error_is_not_found(err))
    *rc = 0;
  if (live)
    ck_informer_observe_memo(op->cms, live, op->cm_memo);
  return live;
}

/* Wait while a burst goes on: until BURST_QUIET_MS pass with no event, at
 * most the burst pause. */
static void burst_pause(op_t *op) {
  int64_t start = ck_now_ms();
  int64_t pause = BURST_PAUSE_MS + 2 * op->last_merge_ms;
  if (pause > BURST_PAUSE_MAX_MS)
    pause = BURST_PAUSE_MAX_MS;
  for (;;) {
    int64_t now = ck_now_ms();
    int64_t quiet_at = atomic_load(&op->last_event_ms) + BURST_QUIET_MS;
    int64_t end = start + pause;
    int64_t until = quiet_at < end ? quiet_at : end;
    if (now >= until)
      return;
    ck_sleep_ms(until - now);
  }
}

/* The snapshot memo's reducer: each AWSAuth the memo parses is read into
 * the merge's cache at once and the memo keeps its stand-in, so that
 * neither a snapshot of thousands of new objects (start-up, a relist) nor
 * the time between merges holds their trees. Runs on the merge worker
 * (snapshots are taken there only). NULL (out of memory): the memo keeps
 * the tree, and the merge reads it. */
static json_t *reduce_object(void *ctx, json_t *obj) {
  op_t *op = ctx;
  json_t *s = NULL;
  return aa_cache_object_read(op->cache, obj, NULL, &s) == 1 ? s : NULL;
}

static void drop_caches(op_t *op) {
  aa_cache_clear(op->cache);
  ck_informer_memo_clear(op->memo);
  ck_informer_memo_clear(op->cm_memo);
  malloc_trim(0);
}

static ck_result_t merge_work(void *ctx, ck_reconcile_t *rc) {
  op_t *op = ctx;
  ck_client_t *c = ck_reconcile_client(rc);
  /* Queued by the last merge to free the caches when nothing follows it
   * (or an earlier such request): nothing changed since, nothing to merge. */
  if (op->idle_pending && atomic_load(&op->events) == op->idle_events) {
    int64_t left = op->idle_since_ms + CACHE_IDLE_MS - ck_now_ms();
    if (left > 0)
      return ck_requeue_after(left);
    op->idle_pending = false;
    drop_caches(op);
    CK_DEBUG(COMP, op->cm_name, "idle: merge caches freed");
    return ck_done();
  }
  op->idle_pending = false;
  if (op->burst)
    burst_pause(op);
  unsigned long long events0 = atomic_load(&op->events);
  ck_error_t err = {0};
  int64_t t0 = ck_now_us(), waited = t0 - atomic_load(&op->last_event_us);
  json_t *objects = NULL;
  if (ck_informer_snapshot_memo(op->objs, NULL, op->memo, &objects) != 0) {
    CK_ERROR(COMP, op->cm_name, "merge: out of memory listing the AWSAuth cache");
    return ck_fail();
  }
  int64_t t1 = ck_now_us(), t2 = 0, t3 = 0;
  unsigned long long events1 = events0;
  /* The cache holds our last write at once (observe); a 409 means someone
   * else wrote: read afresh and merge again, twice at most, then requeue. */
  json_t *live = ck_informer_get_memo(op->cms, op->cm_ns, op->cm_name, op->cm_memo);
  aa_result_t *r = NULL;
  bool wrote = false, conflict = false;
  char write_err[512] = "";
  for (int attempt = 0;; attempt++) {
    pthread_mutex_lock(&op->mu);
    json_t *last_known = json_incref(op->last_known);
    /* Gone from the cache (or the server) while its delete event, which
     * brings the last state, is not handled yet: a merge now would
     * recreate aws-auth without the entries nobody owns. Wait for it. */
    bool unseen_delete = !live && !last_known && op->cm_present;
    pthread_mutex_unlock(&op->mu);
    if (unseen_delete) {
      if (!r) {
        CK_DEBUG(COMP, op->cm_name, "%s/%s is gone, its delete event not yet seen: waiting",
                 op->cm_ns, op->cm_name);
        json_decref(objects);
        return ck_requeue_after(DELETE_WAIT_MS);
      }
      conflict = true; /* an earlier attempt's result stands: requeue */
      break;
    }
    aa_opts_t ao = {.max_removals = op->o->max_removals, .drift = op->o->drift,
                    .last_known = live ? NULL : last_known, .cache = op->cache};
    aa_result_free(r);
    r = NULL;
    conflict = false;
    if (aa_reconcile(live, objects, &ao, &r, &err) != 0) {
      bool stale = err.code == AA_ESTANDIN;
      if (stale) { /* the cache lost a parse the memo still hands in */
        CK_DEBUG(COMP, op->cm_name, "merge: %s", err.message);
        drop_caches(op);
      } else {
        CK_ERROR(COMP, op->cm_name, "merge: %s", err.message);
      }
      json_decref(objects);
      json_decref(live);
      json_decref(last_known);
      return stale ? ck_requeue() : ck_fail();
    }
    t2 = ck_now_us();
    if (r->blocked || !r->write_needed || op->o->dry_run) {
      json_decref(last_known);
      break;
    }
    if (!live && op->o->no_create_configmap) {
      snprintf(write_err, sizeof write_err,
               "%s/%s does not exist and --no-create-configmap is set", op->cm_ns, op->cm_name);
      json_decref(last_known);
      break;
    }
    json_t *next = NULL, *out = NULL;
    int w = aa_apply(live, last_known, r, &next, &err);
    json_decref(last_known);
    if (w != 0) {
      snprintf(write_err, sizeof write_err, "building %s/%s: %s", op->cm_ns, op->cm_name,
               err.message);
      break;
    }
    json_t *md = json_object_get(next, "metadata");
    json_object_set_new(md, "name", json_string(op->cm_name));
    json_object_set_new(md, "namespace", json_string(op->cm_ns));
    unsigned char d[32];
    bool dok = write_digest(next, d);
    pthread_mutex_lock(&op->mu);
    op->writing_set = dok; /* without it, our echo is merged once more: no harm */
    if (dok)
      memcpy(op->writing, d, sizeof d);
    pthread_mutex_unlock(&op->mu);
    if (history_wanted(op, live))
      history_queue(op, live);
    w = live ? ck_object_replace(c, &ck_res_configmaps, op->cm_ns, op->cm_name, next, NULL, &out,
                                 &err)
             : ck_object_create(c, &ck_res_configmaps, op->cm_ns, next, NULL, &out, &err);
    events1 = atomic_load(&op->events);
    t3 = ck_now_us();
    json_decref(next);
    if (w == 0 && out) {
      wrote = true;
      written(op, out);
      ck_informer_observe_memo(op->cms, out, op->cm_memo);
      json_decref(out);
      break;
    }
    json_decref(out);
    if (!(ck_error_is_conflict(&err) || ck_error_is_already_exists(&err))) {
      snprintf(write_err, sizeof write_err, "writing %s/%s: %s", op->cm_ns, op->cm_name,
               err.message);
      break;
    }
    ck_series_inc(op->conflicts);
    conflict = true;
    if (attempt == 2)
      break;
    json_decref(live);
    int g = 0;
    live = read_fresh(op, c, &g, &err);
    if (g != 0) {
      snprintf(write_err, sizeof write_err, "reading %s/%s: %s", op->cm_ns, op->cm_name,
               err.message);
      conflict = false;
      break;
    }
  }
  ck_series_set(op->owned, (double)r->owned);
  ck_series_set(op->foreign, (double)r->foreign);
  ck_series_set(op->bytes, (double)r->data_bytes);
  if (r->parse_error) {
    ck_series_inc(op->parse_errors);
    CK_WARN(COMP, op->cm_name, "live %s/%s: %s", op->cm_ns, op->cm_name, r->parse_error);
  }
  if (r->blocked) {
    ck_series_inc(op->blocked);
    CK_WARN(COMP, op->cm_name, "not writing %s/%s: %s", op->cm_ns, op->cm_name, r->blocked_msg);
  } else if (r->write_needed && op->o->dry_run) {
    log_diff(op, live, r);
  }
  if (wrote) {
    ck_series_inc(op->writes);
    if (r->repaired)
      ck_series_add(op->repairs, (double)r->repaired);
    CK_INFO(COMP, op->cm_name,
            "wrote %s/%s: %zu owned, %zu foreign entries (+%zu ~%zu -%zu, %zu repaired)",
            op->cm_ns, op->cm_name, r->owned, r->foreign, r->added, r->updated, r->removed,
            r->repaired);
  }
  if (write_err[0])
    CK_WARN(COMP, op->cm_name, "%s", write_err);
  if (!conflict) {
    size_t ninvalid = 0, nconflicted = 0;
    for (size_t i = 0; i < r->nobjs; i++) {
      ninvalid += !r->objs[i].valid;
      nconflicted += r->objs[i].conflicted;
    }
    ck_series_set(op->invalid, (double)ninvalid);
    ck_series_set(op->conflicted, (double)nconflicted);
    queue_posts(op, r, wrote || !r->write_needed, write_err[0] ? write_err : NULL);
  }
  bool failed = write_err[0] != '\0';
  size_t nobjs = r->nobjs;
  aa_result_free(r);
  json_decref(live);
  /* Changes that came in before the write was answered were not in it: more
   * are on the way. (Counting later ones would also catch a client that
   * reacts to our write at once with its next change: no burst.) */
  op->burst = wrote && events1 != events0;
  op->last_merge_ms = (ck_now_us() - t0) / 1000;
  if (wrote) {
    int64_t now = ck_now_ms();
    /* In a burst the next merge may be a whole pause away: busy till then. */
    if (op->burst)
      atomic_store(&op->busy_until, now + BURST_PAUSE_MAX_MS + BUSY_MS);
    else if (now - op->last_write_ms < BUSY_MS)
      atomic_store(&op->busy_until, now + BUSY_MS);
    else
      atomic_store(&op->busy_until, 0); /* the burst is over: nothing to wait for */
    op->last_write_ms = now;
  }
  int64_t t4 = ck_now_us();
  CK_DEBUG(COMP, op->cm_name,
           "merge of %zu objects %.2f ms after the last event: list %.2f ms, merge %.2f ms, "
           "write %.2f ms, after %.2f ms%s",
           nobjs, waited / 1e3, (t1 - t0) / 1e3, (t2 - t1) / 1e3, (t3 ? t3 - t2 : 0) / 1e3,
           (t4 - (t3 ? t3 : t2)) / 1e3, op->burst ? " (burst)" : "");
  json_decref(objects);
  /* A merge of many objects leaves megabytes of freed parse trees; give
   * them back rather than keep the peak for the life of the process. */
  if (nobjs >= 1000)
    malloc_trim(0);
  if (conflict)
    return ck_requeue();
  if (failed)
    return ck_fail();
  if (op->burst)
    return ck_done(); /* the next merge comes with the events */
  /* The parsed lists and objects help only while merges follow each other
   * (each reads what the last one wrote, and most objects did not change
   * in between); idle, they are memory for nothing. */
  op->idle_pending = true;
  op->idle_events = events0;
  op->idle_since_ms = ck_now_ms();
  return ck_requeue_after(CACHE_IDLE_MS);
}

/* ---- run ------------------------------------------------------------------ */

static void register_metrics(op_t *op, ck_metrics_t *mx) {
#define GAUGE(n, h) ck_metric_series0(ck_metrics_family(mx, CK_METRIC_GAUGE, n, h, NULL, NULL, 0))
#define COUNTER(n, h)                                                                              \
  ck_metric_series0(ck_metrics_family(mx, CK_METRIC_COUNTER, n, h, NULL, NULL, 0))
  op->writes = COUNTER("awsauth_configmap_writes_total", "Writes of the aws-auth ConfigMap");
  op->conflicts = COUNTER("awsauth_write_conflicts_total", "aws-auth writes refused with 409");
  op->repairs = COUNTER("awsauth_drift_repairs_total", "Owned entries repaired after drift");
  op->parse_errors =
      COUNTER("awsauth_live_parse_errors_total", "Reconciles that found aws-auth unparsable");
  op->blocked = COUNTER("awsauth_blocked_total", "Writes refused by a safety interlock");
  op->owned = GAUGE("awsauth_owned_entries", "Entries owned by AWSAuth objects");
  op->foreign = GAUGE("awsauth_foreign_entries", "Entries no AWSAuth owns (kept as they are)");
  op->invalid = GAUGE("awsauth_invalid_objects", "AWSAuth objects marked Invalid");
  op->conflicted = GAUGE("awsauth_conflicted_objects", "AWSAuth objects marked Conflicted");
  op->bytes = GAUGE("awsauth_configmap_bytes", "Size of aws-auth's data (the limit is 1 MiB)");
#undef GAUGE
#undef COUNTER
}

int aa_operator_run(const aa_run_opts_t *o, ck_error_t *err) {
  op_t op = {.o = o,
             .cm_ns = o->configmap_ns ? o->configmap_ns : "kube-system",
             .cm_name = o->configmap_name ? o->configmap_name : "aws-auth"};
  /* Eight workers each in their own malloc arena keep eight sets of freed
   * pages: two arenas serve this load as well, at a fraction of the RSS. */
  mallopt(M_ARENA_MAX, 2);
  /* Blocks of 64 KiB and more (the emitted lists, request and response
   * bodies, big arrays) get their own mappings, given back to the system
   * when freed. Left to itself, glibc raises this threshold after the
   * first such free (to 32 MiB at most), and from then on carves them out
   * of the heap, where the holes they leave between long-lived blocks stay
   * resident: 11.3 of the 44 MiB at the end of W5 (docs/performance.md).
   * A threshold set in the environment wins. */
  const char *tun = getenv("GLIBC_TUNABLES");
  if (!getenv("MALLOC_MMAP_THRESHOLD_") && !(tun && strstr(tun, "mmap_threshold")))
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  pthread_mutex_init(&op.mu, NULL);
  pthread_mutex_init(&op.turn, NULL);
  pthread_mutex_init(&op.hmu, NULL);
  pthread_cond_init(&op.hcond, NULL);
  ck_config_opts_t co = {.kubeconfig = o->kubeconfig, .context = o->context};
  ck_config_t *cfg = NULL;
  ck_client_t *client = NULL;
  ck_manager_t *m = NULL;
  op.cache = aa_cache_new();
  op.memo = ck_informer_memo_new();
  op.cm_memo = ck_informer_memo_new();
  int rc = op.cache && op.memo && op.cm_memo ? 0 : ck_error_set(err, CK_ENOMEM, "out of memory");
  ck_informer_memo_set_reduce(op.memo, reduce_object, &op);
  if (rc == 0)
    rc = ck_config_load(&co, &cfg, err);
  if (rc == 0)
    rc = ck_client_new(cfg, NULL, &client, err);
  if (rc == 0)
    rc = ck_crd_resource(&awsauth_crd, NULL, &op.res, err);
  if (rc == 0 && o->create_crd) {
    rc = ck_crd_install(client, &awsauth_crd, 60000, err);
    if (rc == 0)
      CK_INFO(COMP, NULL, "CRD awsauths.crdkit.io installed");
  }
  static const char *const default_ns[] = {"kube-system"};
  ck_manager_opts_t mo = {
      .name = "aws-auth",
      .namespaces = o->all_namespaces ? NULL : (o->nnamespaces ? o->namespaces : default_ns),
      .nnamespaces = o->all_namespaces ? 0 : (o->nnamespaces ? o->nnamespaces : 1),
      .metrics_addr = o->metrics_addr,
      .probe_addr = o->probe_addr,
      .leader_elect = o->leader_elect,
      .lease_namespace = op.cm_ns,
  };
  if (rc == 0)
    rc = ck_manager_new(client, &mo, &m, err);
  /* Both share one informer, whose cache keeps a digest of each status
   * instead of the status (statcache.h). */
  ck_controller_opts_t mco = {.name = "aws-auth", .primary = &op.res, .reconcile = merge_work,
                              .ctx = &op, .filter = no_object_keys,
                              .transform = aa_status_transform};
  ck_controller_opts_t oco = {.name = "aws-auth-objects", .primary = &op.res,
                              .reconcile = object_work, .ctx = &op, .filter = no_object_keys,
                              .workers = OBJECT_WORKERS, .transform = aa_status_transform};
  if (rc == 0)
    rc = ck_manager_add_controller(m, &mco, &op.merge_ctl, err);
  if (rc == 0)
    rc = ck_manager_add_controller(m, &oco, &op.obj_ctl, err);
  char field[400];
  snprintf(field, sizeof field, "metadata.name=%s", op.cm_name);
  if (rc == 0) {
    op.objs = ck_controller_informer(op.merge_ctl);
    op.m = m;
    register_metrics(&op, ck_manager_metrics(m));
    op.cms = ck_manager_informer_in(m, &ck_res_configmaps, op.cm_ns, NULL, field, err);
    rc = op.cms ? 0 : err->code;
  }
  if (rc == 0 && (ck_informer_add_handler(op.objs, on_object, &op) < 0 ||
                  ck_informer_add_handler_flags(op.cms, on_configmap, &op, CK_HANDLER_NO_OLD) < 0))
    rc = ck_error_set(err, CK_ENOMEM, "out of memory");
  if (rc == 0 && !o->dry_run) {
    op.history_client = client;
    if (pthread_create(&op.history_tid, NULL, history_thread, &op) != 0)
      rc = ck_error_set(err, CK_ENOMEM, "cannot start the history thread");
    else
      op.history_started = true;
  }
  if (rc == 0) {
    CK_INFO(COMP, NULL, "merging AWSAuth objects into %s/%s%s", op.cm_ns, op.cm_name,
            o->dry_run ? " (dry run: nothing is written)" : "");
    rc = ck_manager_run(m, err);
  }
  if (op.history_started) {
    pthread_mutex_lock(&op.hmu);
    op.hq_stop = true;
    pthread_cond_signal(&op.hcond);
    pthread_mutex_unlock(&op.hmu);
    pthread_join(op.history_tid, NULL);
  }
  ck_manager_free(m);
  ck_client_free(client);
  ck_config_free(cfg);
  json_decref(op.last_known);
  json_decref(op.history);
  aa_cache_free(op.cache);
  ck_informer_memo_free(op.memo);
  ck_informer_memo_free(op.cm_memo);
  size_t pos = 0;
  const char *k;
  void *v;
  while (ck_strmap_next(&op.posts, &pos, &k, &v))
    post_free(v);
  ck_strmap_free(&op.posts);
  pos = 0;
  while (ck_strmap_next(&op.released, &pos, &k, &v))
    free(v);
  ck_strmap_free(&op.released);
  pthread_mutex_destroy(&op.mu);
  pthread_mutex_destroy(&op.turn);
  pthread_mutex_destroy(&op.hmu);
  pthread_cond_destroy(&op.hcond);
  return rc;
}

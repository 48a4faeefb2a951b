/* crdkit/informer.h: informers: a cache of one resource kept in sync by a
 * list + watch, with event handlers and indexes.
 *
 * A reflector per watched namespace (or one for all namespaces) lists the
 * objects (paginated, or the watch-list stream), then watches from the
 * list's resourceVersion with bookmarks, resuming from the last version
 * seen. On 410 Gone it lists again and delivers only the difference:
 * objects that vanished meanwhile produce DELETE events. A stream silent
 * past the bookmark period plus a margin is restarted; failures back off
 * exponentially with jitter (0.8 s doubling to 30 s). A reflector failing
 * for long makes ck_informer_healthy false, for /readyz.
 *
 * The cache keeps each object as compact JSON text (metadata.managedFields
 * dropped, plus whatever the transform drops): about 1x the object's
 * compact size plus a small per-object overhead. Reads parse a private
 * copy the caller owns and may modify.
 *
 * Thread-safety: every function is thread-safe. Handlers run on the
 * reflector threads (or, for ck_informer_observe, on the caller's); they
 * must be quick and must not call back into the same informer.
 */
#ifndef CRDKIT_INFORMER_H
#define CRDKIT_INFORMER_H

#include "crdkit/client.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_informer ck_informer_t;

typedef enum ck_list_mode {
  CK_LIST_PAGINATED = 0, /* LIST with limit/continue, then WATCH */
  CK_LIST_WATCHLIST,     /* one watch with sendInitialEvents=true; falls
                            back to paginated when the server refuses it */
} ck_list_mode_t;

/* Called with each object before it is cached: `obj` is owned by the
 * call; modify it in place and return it, or return another object (and
 * json_decref obj). Returning NULL drops the object from the cache. */
typedef json_t *(*ck_transform_fn)(void *ctx, json_t *obj);

typedef struct ck_informer_opts {
  /* Namespaces to watch (one reflector each); NULL or an empty list: all
   * namespaces. Ignored for cluster-scoped resources. Copied. */
  const char *const *namespaces;
  size_t nnamespaces;
  const char *label_selector; /* server-side; copied */
  const char *field_selector; /* server-side; copied */
  ck_transform_fn transform;
  void *transform_ctx;
  ck_list_mode_t list_mode;
  long page_size;          /* 0: 500 */
  int idle_timeout_s;      /* a silent watch is dead after this; 0: 90 */
  int64_t backoff_max_ms;  /* 0: 30,000 */
  int64_t unhealthy_after_ms; /* failing this long: unhealthy; 0: 60,000 */
} ck_informer_opts_t;

typedef enum ck_informer_event {
  CK_INFORMER_ADD = 1,
  CK_INFORMER_UPDATE,
  CK_INFORMER_DELETE,
} ck_informer_event_t;

/* old: the previous object (UPDATE only, else NULL); obj: the new object,
 * or the last known state for DELETE. Both borrowed for the call. */
typedef void (*ck_informer_handler_fn)(void *ctx, ck_informer_event_t ev, const json_t *old,
                                       const json_t *obj);

/* Index function: call emit(ectx, value) for each index value of obj
 * (values are copied). */
typedef void (*ck_index_emit_fn)(void *ectx, const char *value);
typedef void (*ck_index_fn)(void *ctx, const json_t *obj, ck_index_emit_fn emit, void *ectx);

/* Built-in indexes, always present: */
#define CK_INDEX_NAMESPACE "namespace" /* metadata.namespace */
#define CK_INDEX_OWNER "owner"         /* uid of every ownerReference */

/* Create (not started). `res` is copied (its strings must outlive the
 * informer); `opts` may be NULL. Free with ck_informer_free. */
int ck_informer_new(ck_client_t *c, const ck_resource_t *res, const ck_informer_opts_t *opts,
                    ck_informer_t **out, ck_error_t *err);

/* Register a handler. Objects already cached are replayed to it as ADD
 * events (on the calling thread) before it sees live events. Returns a
 * handler id (>= 0) or CK_ENOMEM. */
int ck_informer_add_handler(ck_informer_t *inf, ck_informer_handler_fn fn, void *ctx);

/* The same with flags (CK_EINVAL for unknown ones):
 * CK_HANDLER_NO_OLD: the handler does not read `old`, and gets NULL. When
 * no handler reads it, an update does not parse the previous object from
 * the cache: for large objects (one ConfigMap of 100 KB written over and
 * over) that parse is most of what an update costs. */
#define CK_HANDLER_NO_OLD 1u
int ck_informer_add_handler_flags(ck_informer_t *inf, ck_informer_handler_fn fn, void *ctx,
                                  unsigned flags);

/* Stop calling that handler. Returns after any running call finished
 * (do not call it from inside a handler). */
void ck_informer_remove_handler(ck_informer_t *inf, int id);

/* Add a user index; before ck_informer_start only (CK_EINVAL after). */
int ck_informer_add_index(ck_informer_t *inf, const char *name, ck_index_fn fn, void *ctx);

/* Start the reflector thread(s). Returns 0 or CK_ENOMEM. */
int ck_informer_start(ck_informer_t *inf);

/* Stop the reflectors (joins them; at most about a second). The cache
 * stays readable. Idempotent. */
void ck_informer_stop(ck_informer_t *inf);

/* Stop and free. NULL is a no-op. */
void ck_informer_free(ck_informer_t *inf);

/* True once every reflector finished its first list. */
bool ck_informer_synced(ck_informer_t *inf);

/* Wait until synced: 0, CK_ETIMEDOUT (timeout_ms < 0: forever), or
 * CK_ECLOSED when stopped first. */
int ck_informer_wait_synced(ck_informer_t *inf, int64_t timeout_ms);

/* False (with a reason in msg) when a reflector has been failing for
 * longer than unhealthy_after_ms, or was stopped. */
bool ck_informer_healthy(ck_informer_t *inf, char *msg, size_t msglen);

/* The cached object (ns NULL for cluster-scoped): a new object the
 * caller owns (json_decref), or NULL when not cached. */
json_t *ck_informer_get(ck_informer_t *inf, const char *ns, const char *name);

/* Same by key "namespace/name" (or "name"). */
json_t *ck_informer_get_key(ck_informer_t *inf, const char *key);

/* Number of cached objects. */
size_t ck_informer_len(ck_informer_t *inf);

/* Call fn for each cached object (in namespace `ns`, or all when NULL);
 * obj is owned by the iteration (json_incref to keep it). fn returns 0 to
 * go on, anything else stops (returned). The cache is read-locked during
 * the iteration: fn must not call into the informer. */
int ck_informer_list(ck_informer_t *inf, const char *ns, int (*fn)(void *ctx, json_t *obj),
                     void *ctx);

/* Every cached object (in namespace `ns`, or all when NULL) at once, as
 * a new JSON array in *out that the caller owns (json_decref), in the
 * order ck_informer_list would give. A large cache is parsed on all
 * cores (at most 4) while it is read-locked. Returns 0, or CK_ENOMEM
 * (*out NULL). */
int ck_informer_snapshot(ck_informer_t *inf, const char *ns, json_t **out);

/* Snapshots that parse only what changed. A memo remembers the objects of
 * the last snapshot taken with it, by key and resourceVersion;
 * ck_informer_snapshot_memo returns what ck_informer_snapshot returns, but
 * an object whose resourceVersion is the same as in that snapshot is the
 * same json_t as then (a new reference in *out), and only the others are
 * parsed. The objects are shared with the memo: never modify them (a
 * change would show in the next snapshots). The memo holds a reference to
 * every object of its last snapshot, so it costs the memory of a parsed
 * cache: clear it (ck_informer_memo_clear) when snapshots stop following
 * each other. Use one memo per informer and namespace (objects outside
 * `ns` are forgotten), from one thread at a time. Returns 0, or CK_ENOMEM
 * (*out NULL; the memo stays usable). */
typedef struct ck_store_memo ck_informer_memo_t;

/* NULL when out of memory; free with ck_informer_memo_free (NULL ok). */
ck_informer_memo_t *ck_informer_memo_new(void);
/* Drop every remembered object (the next snapshot parses all). */
void ck_informer_memo_clear(ck_informer_memo_t *memo);
void ck_informer_memo_free(ck_informer_memo_t *memo);
int ck_informer_snapshot_memo(ck_informer_t *inf, const char *ns, ck_informer_memo_t *memo,
                              json_t **out);

/* Let the memo keep less of every object it parses: fn gets each fresh
 * parse (borrowed) and returns what the memo keeps and hands in its
 * place while the object's resourceVersion stays the same (a new
 * reference: a small stand-in, such as a string, once the caller has read
 * what it needs and keeps it elsewhere), or NULL to keep the parse
 * itself. A snapshot reduces each batch of at most 1024 parses before it
 * parses the next, so the whole trees of a large cache are never held at
 * once. fn runs on the thread taking the snapshot (or
 * ck_informer_get_memo, ck_informer_observe_memo), one object at a time,
 * while the informer's cache is read-locked: it must not call the
 * informer, and it delays the informer's updates while it runs. A caller
 * must handle a stand-in it does not know (its own store may lose one the
 * memo still holds; clearing both together keeps them in step). fn NULL:
 * keep whole parses again. Set it before the memo's first use. */
typedef json_t *(*ck_informer_reduce_fn)(void *ctx, json_t *obj);
void ck_informer_memo_set_reduce(ck_informer_memo_t *memo, ck_informer_reduce_fn fn, void *ctx);

/* ck_informer_get with a memo: when the cached object's resourceVersion
 * is the one the memo holds for it, the memo's json_t (a new reference,
 * shared: never modify it); else a fresh parse, which the memo then
 * keeps. For an object read over and over while it rarely changes (one
 * large ConfigMap), so it is parsed once per version. NULL when not
 * cached or out of memory. The memo's other rules are as above; a memo
 * used for snapshots forgets what a snapshot did not return, so use a
 * separate one here. */
json_t *ck_informer_get_memo(ck_informer_t *inf, const char *ns, const char *name,
                             ck_informer_memo_t *memo);

/* Same for the objects whose index `index` has value `value`. Returns
 * CK_EINVAL for an unknown index. */
int ck_informer_by_index(ck_informer_t *inf, const char *index, const char *value,
                         int (*fn)(void *ctx, json_t *obj), void *ctx);

/* Read-your-writes: feed an object this process just wrote (as the
 * server returned it). When it is newer than the cached copy (by
 * resourceVersion), the cache takes it at once and handlers see the
 * change; the watch event of that same version is then not delivered
 * again. An object not yet cached is added only when the informer has no
 * selectors (or only field selectors on metadata.name/metadata.namespace
 * that it matches) and watches its namespace, not while a (re)list is
 * under way (the list decides what exists), and not when the watch has
 * already delivered the object's deletion at or after obj's
 * resourceVersion (deletions are remembered a minute): the answer to a
 * write that let the object go, such as removing the last finalizer, can
 * arrive after the watch's DELETED event, and must not bring the object
 * back. `obj` is borrowed. */
void ck_informer_observe(ck_informer_t *inf, const json_t *obj);
/* The same, and when the cache takes obj the memo (may be NULL) keeps
 * the cached copy, so ck_informer_get_memo of that version parses
 * nothing. `obj` is borrowed. */
void ck_informer_observe_memo(ck_informer_t *inf, const json_t *obj, ck_informer_memo_t *memo);

/* The resource this informer caches (borrowed). */
const ck_resource_t *ck_informer_resource(const ck_informer_t *inf);

/* Counters for benchmarks and metrics. */
typedef struct ck_informer_stats {
  uint64_t events;   /* watch events applied */
  uint64_t lists;    /* completed lists (first sync and relists) */
  uint64_t watches;  /* watch streams opened */
  uint64_t failures; /* failed lists/watches */
  size_t bytes;      /* compact JSON bytes cached */
} ck_informer_stats_t;
void ck_informer_get_stats(ck_informer_t *inf, ck_informer_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif

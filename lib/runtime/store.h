/* The informer's cache (private): objects as compact JSON text keyed by
 * "namespace/name", with indexes. Thread-safe (one rwlock). */
#ifndef CK_RUNTIME_STORE_H
#define CK_RUNTIME_STORE_H

#include "crdkit/informer.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct ck_store ck_store_t;

ck_store_t *ck_store_new(void);
void ck_store_free(ck_store_t *s);
/* Before any object is added. Name and index are copied/borrowed (ctx). */
int ck_store_add_index(ck_store_t *s, const char *name, ck_index_fn fn, void *ctx);

/* "ns/name" or "name" of obj, malloc'd; NULL when it has no name. */
char *ck_store_key_of(const json_t *obj);
/* resourceVersion as a number for ordering; 0 when absent/not numeric. */
uint64_t ck_store_rv_of(const json_t *obj);

typedef enum ck_store_result {
  CK_STORE_ADDED = 1,
  CK_STORE_UPDATED,
  CK_STORE_UNCHANGED, /* same resourceVersion and content */
  CK_STORE_STALE,     /* older than the cached copy (only with only_newer) */
  CK_STORE_SKIPPED,   /* ck_store_observe: not cached, and not added */
} ck_store_result_t;

/* Insert or replace obj (borrowed; already transformed). `mark` tags the
 * entry for ck_store_sweep. With only_newer, an object whose numeric
 * resourceVersion is not greater than the cached one is ignored
 * (CK_STORE_STALE). When old_out is not NULL and the result is UPDATED, it
 * receives the previous object (new reference). Returns a
 * ck_store_result_t, or a negative CK_E* code. */
int ck_store_upsert(ck_store_t *s, const json_t *obj, uint32_t mark, bool only_newer,
                    bool need_old, json_t **old_out);

/* What the answer to one's own write says (obj borrowed, transformed):
 * replaces the cached copy when newer, and keeps the entry's mark, so a
 * relist under way still decides whether the object exists. A key not
 * cached is added (with mark 0) only when may_add and no delete of it at
 * or after obj's resourceVersion is known (deletes and sweeps are kept a
 * minute): the watch may have delivered the object's deletion before the
 * answer arrived. Returns a ck_store_result_t (CK_STORE_SKIPPED: not
 * added) or a negative CK_E* code; old_out as for ck_store_upsert. */
int ck_store_observe(ck_store_t *s, const json_t *obj, bool may_add, bool need_old,
                     json_t **old_out);

/* Remove by key; *old_out gets the last state (new reference) when not
 * NULL. Returns 1 when removed, 0 when absent. With min_rv > 0, an entry
 * whose resourceVersion is greater than min_rv is kept (returns 0). The
 * delete is remembered at min_rv (see ck_store_observe), also when the key
 * was not cached. */
int ck_store_delete(ck_store_t *s, const char *key, uint64_t min_rv, json_t **old_out);
/* Deletes remembered now (at most 65,536, none older than a minute). */
size_t ck_store_tombs_len(ck_store_t *s);

/* Remove every entry in namespace `ns` (NULL: all) whose mark differs from
 * `mark`, calling fn(ctx, last state) for each (outside the lock). The
 * entries are remembered as deleted at list_rv (the resourceVersion of
 * the list that did not hold them; 0: unknown, then at their own). */
void ck_store_sweep(ck_store_t *s, const char *ns, uint32_t mark, uint64_t list_rv,
                    void (*fn)(void *ctx, json_t *obj), void *ctx);

/* Parsed copy (new reference) or NULL. */
json_t *ck_store_get(ck_store_t *s, const char *key);
/* Is the key cached (cheap, no parse). */
bool ck_store_has(ck_store_t *s, const char *key);
size_t ck_store_len(ck_store_t *s);
size_t ck_store_bytes(ck_store_t *s);
/* The entries' memory (util/pool.h): bytes of live blocks, bytes handed
 * out (live and dead), bytes mapped, and compactions so far. */
typedef struct ck_store_mem {
  size_t live, used, mapped, compactions;
} ck_store_mem_t;
void ck_store_mem(ck_store_t *s, ck_store_mem_t *m);
int ck_store_list(ck_store_t *s, const char *ns, int (*fn)(void *ctx, json_t *obj), void *ctx);
/* ck_informer_snapshot(_memo): all (or ns's) objects as a new array in
 * *out; with a memo (may be NULL), objects unchanged since its last
 * snapshot are the memo's (shared) parses. */
typedef struct ck_store_memo ck_store_memo_t;
ck_store_memo_t *ck_store_memo_new(void);
void ck_store_memo_clear(ck_store_memo_t *m);
void ck_store_memo_free(ck_store_memo_t *m);
size_t ck_store_memo_len(const ck_store_memo_t *m); /* objects remembered */
/* ck_informer_memo_set_reduce */
void ck_store_memo_set_reduce(ck_store_memo_t *m, json_t *(*fn)(void *ctx, json_t *obj),
                              void *ctx);
int ck_store_snapshot(ck_store_t *s, const char *ns, ck_store_memo_t *memo, json_t **out);
/* ck_informer_get_memo by store key (memo NULL: ck_store_get); and what
 * ck_informer_observe_memo keeps: obj as key's parse at its
 * resourceVersion. */
json_t *ck_store_get_memo(ck_store_t *s, const char *key, ck_store_memo_t *memo);
void ck_store_memo_remember(ck_store_memo_t *memo, const char *key, json_t *obj);
int ck_store_by_index(ck_store_t *s, const char *index, const char *value,
                      int (*fn)(void *ctx, json_t *obj), void *ctx);

#endif

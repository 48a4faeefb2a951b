/* The informer's cache. Objects are kept as compact JSON text: jansson
 * trees cost several times the text (a hashtable and an allocation per
 * member), and the cache is the bulk of an operator's memory. Readers get
 * a freshly parsed copy they own, so no caller can corrupt the cache.
 *
 * Each entry is one block (header, key, JSON, index values) from a pool
 * of its own mappings (util/pool.h), not from malloc: entries live for
 * hours, the parse trees and responses around them for microseconds, and
 * on a shared heap every page holding one entry stays resident once the
 * rest is freed. When a third of the pool is dead (updates and deletes),
 * the live blocks are copied into a new pool and the old one unmapped. */
#include "runtime/store.h"

#include "crdkit/error.h"
#include "util/buf.h"
#include "util/jsonin.h"
#include "util/jsonout.h"
#include "util/parallel.h"
#include "util/pool.h"
#include "util/strmap.h"
#include "util/timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Dead pool bytes tolerated before a compaction, whatever the ratio. */
#define COMPACT_SLACK ((size_t)256 * 1024)

/* Index values follow the JSON: for each index in order, every value as
 * VAL_MARK value NUL, then VAL_END. */
#define VAL_MARK '\x01'
#define VAL_END '\0'

typedef struct entry {
  ck_pool_chunk_t *chunk;
  struct entry *moved; /* during a compaction: the copy */
  uint64_t rv;
  uint32_t size; /* block bytes */
  uint32_t len;  /* stored (tokenised) JSON bytes */
  uint32_t raw;  /* the JSON's bytes before tokenising */
  uint32_t mark;
  uint16_t klen;
  char data[]; /* key NUL, tokenised JSON NUL, index values */
} entry_t;

static const char *key_of(const entry_t *e) {
  return e->data;
}

static const char *json_of(const entry_t *e) {
  return e->data + e->klen + 1;
}

/* ---- tokens ----------------------------------------------------------------
 * Compact JSON as jansson writes it never holds a byte below 0x20 (control
 * characters in strings are escaped, and there is no whitespace), so those
 * bytes can stand for the member names every Kubernetes object repeats: a
 * sixth of a typical cached object. Expanding them back costs a copy. */

static const char *const tokens[32] = {
    NULL,
    "\"apiVersion\":\"", "\"kind\":\"", "\"metadata\":{", "\"creationTimestamp\":\"",
    "\"finalizers\":[\"", "\"generation\":", "\"name\":\"", "\"namespace\":\"",
    "\"resourceVersion\":\"", "\"uid\":\"", "\"labels\":{", "\"annotations\":{",
    "\"ownerReferences\":[{", "\"spec\":{", "\"status\":{", "\"conditions\":[{",
    "\"lastTransitionTime\":\"", "\"message\":\"", "\"observedGeneration\":", "\"reason\":\"",
    "\"type\":\"", "\"status\":\"", "\"deletionTimestamp\":\"", "\"controller\":true",
    "\"blockOwnerDeletion\":true", "\"data\":{", "\"containers\":[{", "\"image\":\"",
    "\"value\":\"", "\"kubernetes.io/", "\"deletionGracePeriodSeconds\":",
};

static uint8_t token_len[32];
static pthread_once_t token_once = PTHREAD_ONCE_INIT;

static void token_init(void) {
  for (int t = 1; t < 32; t++)
    token_len[t] = (uint8_t)strlen(tokens[t]);
}

/* Append the JSON text j[0..n) to b with tokens for the known names; the
 * text unchanged when it holds a byte a token would be taken for. */
static void tokenise(ck_buf_t *b, const char *j, size_t n) {
  pthread_once(&token_once, token_init);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)j[i] < 0x20) {
      ck_buf_append(b, j, n);
      return;
    }
  if (!ck_buf_reserve(b, n + 1))
    return;
  char *out = b->data + b->len;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    int best = 0;
    if (j[i] == '"' && i + 1 < n)
      for (int t = 1; t < 32; t++)
        if (tokens[t][1] == j[i + 1] && token_len[t] <= n - i && token_len[t] > token_len[best] &&
            memcmp(j + i, tokens[t], token_len[t]) == 0)
          best = t;
    if (best) {
      out[o++] = (char)best;
      i += token_len[best];
    } else {
      out[o++] = j[i++];
    }
  }
  b->len += o;
  b->data[b->len] = '\0';
}

/* The entry's JSON as text (expanded into buf when it is large enough,
 * else malloc'd: *heap says which). NULL when out of memory. */
static const char *untokenise(const entry_t *e, char *buf, size_t cap, char **heap) {
  *heap = NULL;
  const char *j = json_of(e);
  if (e->len == e->raw)
    return j;
  char *out = buf;
  if ((size_t)e->raw > cap && !(out = *heap = malloc(e->raw)))
    return NULL;
  size_t o = 0;
  for (uint32_t i = 0; i < e->len; i++) {
    unsigned char c = (unsigned char)j[i];
    if (c < 0x20 && c) {
      memcpy(out + o, tokens[c], token_len[c]);
      o += token_len[c];
    } else {
      out[o++] = (char)c;
    }
  }
  return out;
}

typedef struct bucket {
  char *value;
  ck_strmap_t members; /* entry key -> entry */
} bucket_t;

typedef struct index {
  char *name;
  ck_index_fn fn;
  void *ctx;
  ck_strmap_t buckets; /* value -> bucket */
} index_t;

/* A delete remembered (see "recent deletes" below). */
typedef struct tomb {
  struct tomb *next; /* the next younger one */
  uint64_t rv;
  int64_t at_ms;
  char key[];
} tomb_t;

struct ck_store {
  pthread_rwlock_t lock;
  ck_strmap_t items; /* key -> entry */
  ck_strmap_t tombs; /* key -> its latest tomb_t */
  tomb_t *tomb_old, *tomb_new; /* every tomb, oldest first */
  size_t ntombs;
  index_t *idx;
  size_t nidx;
  size_t bytes;
  ck_pool_t pool;
  size_t compactions;
};

static void index_namespace(void *ctx, const json_t *obj, ck_index_emit_fn emit, void *ectx) {
  (void)ctx;
  const char *ns = json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
  if (ns)
    emit(ectx, ns);
}

static void index_owner(void *ctx, const json_t *obj, ck_index_emit_fn emit, void *ectx) {
  (void)ctx;
  json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences");
  size_t i;
  json_t *r;
  json_array_foreach(refs, i, r) {
    const char *uid = json_string_value(json_object_get(r, "uid"));
    if (uid)
      emit(ectx, uid);
  }
}

ck_store_t *ck_store_new(void) {
  ck_store_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  pthread_rwlock_init(&s->lock, NULL);
  if (ck_store_add_index(s, CK_INDEX_NAMESPACE, index_namespace, NULL) != 0 ||
      ck_store_add_index(s, CK_INDEX_OWNER, index_owner, NULL) != 0) {
    ck_store_free(s);
    return NULL;
  }
  return s;
}

int ck_store_add_index(ck_store_t *s, const char *name, ck_index_fn fn, void *ctx) {
  if (!name || !fn)
    return CK_EINVAL;
  for (size_t i = 0; i < s->nidx; i++)
    if (strcmp(s->idx[i].name, name) == 0)
      return CK_EINVAL;
  if (s->items.len)
    return CK_EINVAL;
  index_t *n = realloc(s->idx, (s->nidx + 1) * sizeof *n);
  if (!n)
    return CK_ENOMEM;
  s->idx = n;
  char *nm = strdup(name);
  if (!nm)
    return CK_ENOMEM;
  s->idx[s->nidx++] = (index_t){.name = nm, .fn = fn, .ctx = ctx};
  return 0;
}

static void entry_free(ck_store_t *s, entry_t *e) {
  ck_pool_release(&s->pool, e->chunk, e->size);
}

/* ---- recent deletes --------------------------------------------------------
 * The answer to a write can reach ck_store_observe after the watch has
 * delivered the object's deletion: the two travel on different
 * connections to different threads. Adding the answer then would bring
 * back an object that no longer exists, and it would stay until the next
 * relist. So each delete is kept, by key with its resourceVersion, for
 * TOMB_TTL_MS (and at most TOMB_MAX of them), and an observed object no
 * newer than its key's delete is not added. An answer is observed within
 * microseconds of its arrival; the minute is a wide margin. */
#define TOMB_TTL_MS 60000
#define TOMB_MAX 65536

static void tombs_prune(ck_store_t *s, int64_t now) {
  while (s->tomb_old && (now - s->tomb_old->at_ms > TOMB_TTL_MS || s->ntombs >= TOMB_MAX)) {
    tomb_t *t = s->tomb_old;
    s->tomb_old = t->next;
    if (!s->tomb_old)
      s->tomb_new = NULL;
    s->ntombs--;
    if (ck_strmap_get(&s->tombs, t->key) == t) /* not replaced by a later delete */
      ck_strmap_del(&s->tombs, t->key);
    free(t);
  }
}

/* Under the write lock (the prune leaves room for this one: at most
 * TOMB_MAX after it). Best effort: without memory, a late answer may
 * bring the key back until the next relist, as if there were no tombs. */
static void tomb_add(ck_store_t *s, const char *key, uint64_t rv) {
  int64_t now = ck_now_ms();
  tombs_prune(s, now);
  size_t n = strlen(key);
  tomb_t *t = malloc(sizeof *t + n + 1);
  if (!t)
    return;
  *t = (tomb_t){.rv = rv, .at_ms = now};
  memcpy(t->key, key, n + 1);
  tomb_t *prev = ck_strmap_get(&s->tombs, key);
  if (prev && prev->rv > t->rv)
    t->rv = prev->rv;
  if (prev ? !ck_strmap_repoint(&s->tombs, t->key, t)
           : ck_strmap_put(&s->tombs, t->key, t, NULL) != 0) {
    free(t);
    return;
  }
  if (s->tomb_new)
    s->tomb_new->next = t;
  else
    s->tomb_old = t;
  s->tomb_new = t;
  s->ntombs++;
}

size_t ck_store_tombs_len(ck_store_t *s) {
  pthread_rwlock_rdlock(&s->lock);
  size_t n = s->ntombs;
  pthread_rwlock_unlock(&s->lock);
  return n;
}

/* Was key deleted at or after resourceVersion rv (0: unknown)? */
static bool tomb_covers(const ck_store_t *s, const char *key, uint64_t rv) {
  const tomb_t *t = ck_strmap_get(&s->tombs, key);
  return t && (!rv || rv <= t->rv);
}

void ck_store_free(ck_store_t *s) {
  if (!s)
    return;
  tombs_prune(s, INT64_MAX); /* every tomb is older than that */
  ck_strmap_free(&s->tombs);
  ck_pool_clear(&s->pool);
  ck_strmap_free(&s->items);
  void *v;
  for (size_t i = 0; i < s->nidx; i++) {
    size_t bp = 0;
    while (ck_strmap_next(&s->idx[i].buckets, &bp, NULL, &v)) {
      bucket_t *b = v;
      ck_strmap_free(&b->members);
      free(b->value);
      free(b);
    }
    ck_strmap_free(&s->idx[i].buckets);
    free(s->idx[i].name);
  }
  free(s->idx);
  pthread_rwlock_destroy(&s->lock);
  free(s);
}

char *ck_store_key_of(const json_t *obj) {
  json_t *md = json_object_get(obj, "metadata");
  const char *name = json_string_value(json_object_get(md, "name"));
  const char *ns = json_string_value(json_object_get(md, "namespace"));
  if (!name || !*name)
    return NULL;
  if (!ns || !*ns)
    return strdup(name);
  char *k = NULL;
  return asprintf(&k, "%s/%s", ns, name) < 0 ? NULL : k;
}

uint64_t ck_store_rv_of(const json_t *obj) {
  const char *rv =
      json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
  if (!rv || !*rv || strlen(rv) > 19)
    return 0;
  uint64_t v = 0;
  for (const char *p = rv; *p; p++) {
    if (*p < '0' || *p > '9')
      return 0;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  return v;
}

/* ---- index values (built before the lock) -------------------------------- */

typedef struct vals {
  ck_buf_t *b;
  size_t start; /* where the current index's values begin */
} vals_t;

static void collect(void *ectx, const char *value) {
  vals_t *vs = ectx;
  if (!value)
    return;
  /* Once per value: an object that names a value twice is indexed once. */
  for (size_t p = vs->start; p < vs->b->len;) {
    const char *v = vs->b->data + p + 1;
    if (strcmp(v, value) == 0)
      return;
    p += strlen(v) + 2;
  }
  ck_buf_putc(vs->b, VAL_MARK);
  ck_buf_append(vs->b, value, strlen(value) + 1);
}

/* The next value of a list at *p, or NULL at its end (then *p is past the
 * end mark, at the next index's list). */
static const char *next_val(const char **p) {
  if (**p != VAL_MARK) {
    (*p)++;
    return NULL;
  }
  const char *v = *p + 1;
  *p = v + strlen(v) + 1;
  return v;
}

static const char *vals_of(const entry_t *e) {
  return json_of(e) + e->len + 1;
}

/* ---- indexes (write lock held) ------------------------------------------ */

static void index_remove(ck_store_t *s, entry_t *e) {
  const char *p = vals_of(e);
  for (size_t i = 0; i < s->nidx; i++)
    for (const char *v; (v = next_val(&p));) {
      bucket_t *b = ck_strmap_get(&s->idx[i].buckets, v);
      if (!b)
        continue;
      ck_strmap_del(&b->members, key_of(e));
      if (b->members.len == 0) {
        ck_strmap_del(&s->idx[i].buckets, b->value);
        ck_strmap_free(&b->members);
        free(b->value);
        free(b);
      }
    }
}

/* Index e under its values. On allocation failure the entry is left out
 * of some index (the cache itself stays right). */
static void index_add(ck_store_t *s, entry_t *e) {
  const char *p = vals_of(e);
  for (size_t i = 0; i < s->nidx; i++)
    for (const char *v; (v = next_val(&p));) {
      bucket_t *b = ck_strmap_get(&s->idx[i].buckets, v);
      if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || !(b->value = strdup(v)) || ck_strmap_put(&s->idx[i].buckets, b->value, b, NULL) != 0) {
          if (b)
            free(b->value);
          free(b);
          continue;
        }
      }
      ck_strmap_put(&b->members, key_of(e), e, NULL);
    }
}

/* ---- compaction (write lock held) --------------------------------------- */

static void *moved(void *ctx, void *value, const char **key) {
  (void)ctx;
  entry_t *n = ((entry_t *)value)->moved;
  *key = key_of(n);
  return n;
}

/* Copy every entry into a new pool and unmap the old one. Without the
 * memory for the copy, nothing changes. */
static void compact(ck_store_t *s) {
  ck_pool_t np = {0};
  size_t pos = 0;
  void *v;
  while (ck_strmap_next(&s->items, &pos, NULL, &v)) {
    entry_t *e = v;
    ck_pool_chunk_t *c;
    entry_t *n = ck_pool_alloc(&np, e->size, &c);
    if (!n) {
      ck_pool_clear(&np);
      return;
    }
    memcpy(n, e, e->size);
    n->chunk = c;
    e->moved = n;
  }
  ck_strmap_move(&s->items, moved, NULL);
  for (size_t i = 0; i < s->nidx; i++) {
    size_t bp = 0;
    while (ck_strmap_next(&s->idx[i].buckets, &bp, NULL, &v))
      ck_strmap_move(&((bucket_t *)v)->members, moved, NULL);
  }
  ck_pool_clear(&s->pool);
  s->pool = np;
  s->compactions++;
}

static void maybe_compact(ck_store_t *s) {
  if (ck_pool_wasteful(&s->pool, COMPACT_SLACK))
    compact(s);
}

/* ---- writes -------------------------------------------------------------- */

static json_t *parse(const entry_t *e) {
  char buf[4096], *heap;
  const char *j = untokenise(e, buf, sizeof buf, &heap);
  json_t *o = j ? ck_json_loadb(j, e->raw, false, NULL) : NULL;
  free(heap);
  return o;
}

/* key NUL, compact JSON NUL, index values: the entry's data, in b. */
static int entry_data(ck_store_t *s, const json_t *obj, const char *key, ck_buf_t *b,
                      size_t *len, size_t *raw) {
  ck_buf_t j = {0};
  if (ck_json_dump(obj, &j) != 0 || !j.len) {
    ck_buf_free(&j);
    return CK_ENOMEM;
  }
  ck_buf_append(b, key, strlen(key) + 1);
  size_t at = b->len;
  tokenise(b, j.data, j.len);
  *raw = j.len;
  *len = b->len - at;
  ck_buf_free(&j);
  ck_buf_putc(b, '\0');
  for (size_t i = 0; i < s->nidx; i++) {
    vals_t vs = {.b = b, .start = b->len};
    s->idx[i].fn(s->idx[i].ctx, obj, collect, &vs);
    ck_buf_putc(b, VAL_END);
  }
  return b->oom ? CK_ENOMEM : 0;
}

/* How put() stores: */
enum {
  PUT_ONLY_NEWER = 1, /* ignore an object not newer than the cached one */
  PUT_OBSERVED = 2,   /* ck_store_observe: keep the mark; add only when allowed */
  PUT_MAY_ADD = 4,    /* with PUT_OBSERVED: a key not cached may be added */
};

/* Is a key that is not cached to be left out (PUT_OBSERVED)? */
static bool observed_not_added(const ck_store_t *s, const char *key, uint64_t rv, unsigned how) {
  return (how & PUT_OBSERVED) && (!(how & PUT_MAY_ADD) || tomb_covers(s, key, rv));
}

static int put(ck_store_t *s, const json_t *obj, uint32_t mark, unsigned how, bool need_old,
               json_t **old_out) {
  if (old_out)
    *old_out = NULL;
  bool only_newer = how & (PUT_ONLY_NEWER | PUT_OBSERVED);
  char *key = ck_store_key_of(obj);
  if (!key)
    return CK_EINVAL;
  uint64_t rv = ck_store_rv_of(obj);
  pthread_rwlock_wrlock(&s->lock);
  entry_t *e = ck_strmap_get(&s->items, key);
  if (!e && observed_not_added(s, key, rv, how)) {
    pthread_rwlock_unlock(&s->lock);
    free(key);
    return CK_STORE_SKIPPED;
  }
  if (e && rv && e->rv) {
    if (rv == e->rv) {
      if (!(how & PUT_OBSERVED))
        e->mark = mark;
      pthread_rwlock_unlock(&s->lock);
      free(key);
      return CK_STORE_UNCHANGED;
    }
    if (only_newer && rv < e->rv) {
      pthread_rwlock_unlock(&s->lock);
      free(key);
      return CK_STORE_STALE;
    }
  }
  pthread_rwlock_unlock(&s->lock);

  /* Serialise outside the lock: readers keep going meanwhile. */
  ck_buf_t b = {0};
  size_t len = 0, raw = 0, klen = strlen(key);
  if (klen > UINT16_MAX) { /* a name the API server would refuse */
    free(key);
    return CK_EINVAL;
  }
  if (entry_data(s, obj, key, &b, &len, &raw) != 0 || sizeof(entry_t) + b.len > UINT32_MAX) {
    ck_buf_free(&b);
    free(key);
    return CK_ENOMEM;
  }

  pthread_rwlock_wrlock(&s->lock);
  e = ck_strmap_get(&s->items, key); /* again: it may have changed meanwhile */
  int early = !e && observed_not_added(s, key, rv, how) ? CK_STORE_SKIPPED
              : e && only_newer && rv && e->rv && rv <= e->rv ? CK_STORE_STALE
                                                               : 0;
  if (early) {
    pthread_rwlock_unlock(&s->lock);
    ck_buf_free(&b);
    free(key);
    return early;
  }
  if (how & PUT_OBSERVED) /* only a list or the watch says an object is listed */
    mark = e ? e->mark : 0;
  ck_pool_chunk_t *chunk;
  size_t size = sizeof(entry_t) + b.len;
  entry_t *n = ck_pool_alloc(&s->pool, size, &chunk);
  if (n) {
    *n = (entry_t){.chunk = chunk, .rv = rv, .size = (uint32_t)size, .len = (uint32_t)len,
                   .raw = (uint32_t)raw, .klen = (uint16_t)klen, .mark = mark};
    memcpy(n->data, b.data, b.len);
  }
  ck_buf_free(&b);
  free(key);
  /* A new key may need the map to grow; a replaced one never does. */
  if (!n || (!e && ck_strmap_put(&s->items, key_of(n), n, NULL) != 0)) {
    if (n)
      ck_pool_release(&s->pool, chunk, size);
    pthread_rwlock_unlock(&s->lock);
    return CK_ENOMEM;
  }
  int result = CK_STORE_ADDED;
  if (e) {
    if (need_old && old_out)
      *old_out = parse(e);
    index_remove(s, e);
    s->bytes -= e->raw;
    ck_strmap_repoint(&s->items, key_of(n), n);
    entry_free(s, e);
    result = CK_STORE_UPDATED;
  }
  s->bytes += raw;
  index_add(s, n);
  if (e)
    maybe_compact(s);
  pthread_rwlock_unlock(&s->lock);
  return result;
}

int ck_store_upsert(ck_store_t *s, const json_t *obj, uint32_t mark, bool only_newer,
                    bool need_old, json_t **old_out) {
  return put(s, obj, mark, only_newer ? PUT_ONLY_NEWER : 0, need_old, old_out);
}

int ck_store_observe(ck_store_t *s, const json_t *obj, bool may_add, bool need_old,
                     json_t **old_out) {
  return put(s, obj, 0, PUT_OBSERVED | (may_add ? PUT_MAY_ADD : 0), need_old, old_out);
}

static json_t *remove_entry(ck_store_t *s, entry_t *e, bool want) {
  json_t *last = want ? parse(e) : NULL;
  index_remove(s, e);
  ck_strmap_del(&s->items, key_of(e));
  s->bytes -= e->raw;
  entry_free(s, e);
  return last;
}

int ck_store_delete(ck_store_t *s, const char *key, uint64_t min_rv, json_t **old_out) {
  if (old_out)
    *old_out = NULL;
  pthread_rwlock_wrlock(&s->lock);
  entry_t *e = ck_strmap_get(&s->items, key);
  if (e && min_rv && e->rv > min_rv) { /* a later object of that name */
    pthread_rwlock_unlock(&s->lock);
    return 0;
  }
  /* Known even when it was not cached: an answer observed later must not
   * add it. */
  tomb_add(s, key, min_rv ? min_rv : e ? e->rv : 0);
  if (!e) {
    pthread_rwlock_unlock(&s->lock);
    return 0;
  }
  json_t *last = remove_entry(s, e, old_out != NULL);
  maybe_compact(s);
  pthread_rwlock_unlock(&s->lock);
  if (old_out)
    *old_out = last;
  return 1;
}

static bool in_ns(const char *key, const char *ns) {
  if (!ns)
    return true;
  size_t n = strlen(ns);
  return strncmp(key, ns, n) == 0 && key[n] == '/';
}

void ck_store_sweep(ck_store_t *s, const char *ns, uint32_t mark, uint64_t list_rv,
                    void (*fn)(void *ctx, json_t *obj), void *ctx) {
  pthread_rwlock_wrlock(&s->lock);
  /* Pick the victims first (removal moves slots under an iteration), with
   * room for their last states: all of them go, or none does (then the
   * next relist sweeps them), so no handler misses a delete. */
  size_t n = 0, pos = 0, cap = s->items.len;
  entry_t **victims = cap ? malloc(cap * sizeof(entry_t *)) : NULL;
  json_t **last = cap ? calloc(cap, sizeof(json_t *)) : NULL;
  bool ok = victims && last;
  void *v;
  while (ok && ck_strmap_next(&s->items, &pos, NULL, &v)) {
    entry_t *e = v;
    if (e->mark != mark && in_ns(key_of(e), ns))
      victims[n++] = e;
  }
  for (size_t k = 0; ok && k < n; k++)
    ok = (last[k] = parse(victims[k])) != NULL;
  for (size_t k = 0; ok && k < n; k++) {
    /* gone by the list's resourceVersion */
    tomb_add(s, key_of(victims[k]), list_rv > victims[k]->rv ? list_rv : victims[k]->rv);
    remove_entry(s, victims[k], false);
  }
  if (ok)
    maybe_compact(s);
  pthread_rwlock_unlock(&s->lock);
  for (size_t k = 0; k < n && last; k++) {
    if (ok)
      fn(ctx, last[k]);
    json_decref(last[k]);
  }
  free(victims);
  free(last);
}

/* ---- reads --------------------------------------------------------------- */

json_t *ck_store_get(ck_store_t *s, const char *key) {
  pthread_rwlock_rdlock(&s->lock);
  entry_t *e = ck_strmap_get(&s->items, key);
  json_t *o = e ? parse(e) : NULL;
  pthread_rwlock_unlock(&s->lock);
  return o;
}

bool ck_store_has(ck_store_t *s, const char *key) {
  pthread_rwlock_rdlock(&s->lock);
  bool has = ck_strmap_get(&s->items, key) != NULL;
  pthread_rwlock_unlock(&s->lock);
  return has;
}

size_t ck_store_len(ck_store_t *s) {
  pthread_rwlock_rdlock(&s->lock);
  size_t n = s->items.len;
  pthread_rwlock_unlock(&s->lock);
  return n;
}

void ck_store_mem(ck_store_t *s, ck_store_mem_t *m) {
  pthread_rwlock_rdlock(&s->lock);
  *m = (ck_store_mem_t){.live = s->pool.live, .used = s->pool.used, .mapped = s->pool.mapped,
                        .compactions = s->compactions};
  pthread_rwlock_unlock(&s->lock);
}

size_t ck_store_bytes(ck_store_t *s) {
  pthread_rwlock_rdlock(&s->lock);
  size_t n = s->bytes;
  pthread_rwlock_unlock(&s->lock);
  return n;
}

static int each(const ck_strmap_t *m, int (*fn)(void *ctx, json_t *obj), void *ctx) {
  size_t pos = 0;
  void *v;
  while (ck_strmap_next(m, &pos, NULL, &v)) {
    json_t *o = parse(v);
    if (!o)
      return CK_ENOMEM;
    int rc = fn(ctx, o);
    json_decref(o);
    if (rc)
      return rc;
  }
  return 0;
}

/* The entries whose index `index` has `value` (NULL: none has it); lock
 * held. Returns CK_EINVAL for an unknown index. */
static int members_of(ck_store_t *s, const char *index, const char *value,
                      const ck_strmap_t **m) {
  *m = NULL;
  for (size_t i = 0; i < s->nidx; i++)
    if (strcmp(s->idx[i].name, index) == 0) {
      bucket_t *b = ck_strmap_get(&s->idx[i].buckets, value);
      *m = b ? &b->members : NULL;
      return 0;
    }
  return CK_EINVAL;
}

int ck_store_by_index(ck_store_t *s, const char *index, const char *value,
                      int (*fn)(void *ctx, json_t *obj), void *ctx) {
  pthread_rwlock_rdlock(&s->lock);
  const ck_strmap_t *m;
  int rc = members_of(s, index, value, &m);
  if (rc == 0 && m)
    rc = each(m, fn, ctx);
  pthread_rwlock_unlock(&s->lock);
  return rc;
}

int ck_store_list(ck_store_t *s, const char *ns, int (*fn)(void *ctx, json_t *obj), void *ctx) {
  if (ns)
    return ck_store_by_index(s, CK_INDEX_NAMESPACE, ns, fn, ctx);
  pthread_rwlock_rdlock(&s->lock);
  int rc = each(&s->items, fn, ctx);
  pthread_rwlock_unlock(&s->lock);
  return rc;
}

/* ---- snapshot ------------------------------------------------------------ */

/* Entries per job of a parallel snapshot, and the least entries worth a
 * second thread (starting one costs about as much as parsing a hundred). */
#define SNAP_CHUNK 256
#define SNAP_MIN 1024

typedef struct snap {
  entry_t **e; /* the entries to parse */
  size_t *at;  /* where each one's parse goes in o */
  json_t **o;  /* the snapshot, in order */
  size_t n;
  atomic_bool oom;
} snap_t;

static void snap_chunk(void *ctx, size_t c) {
  snap_t *sn = ctx;
  size_t end = (c + 1) * SNAP_CHUNK < sn->n ? (c + 1) * SNAP_CHUNK : sn->n;
  for (size_t i = c * SNAP_CHUNK; i < end; i++)
    if (!(sn->o[sn->at[i]] = parse(sn->e[i])))
      atomic_store(&sn->oom, true);
}

/* What a memo remembers of one object: its parse at resourceVersion rv,
 * and the snapshot that last returned it. */
typedef struct memo_item {
  uint64_t rv;
  json_t *obj;
  uint32_t gen;
  char key[];
} memo_item_t;

struct ck_store_memo {
  ck_strmap_t items; /* key -> memo_item_t */
  json_t *(*reduce)(void *ctx, json_t *obj); /* NULL: keep each parse whole */
  void *reduce_ctx;
  uint32_t gen;
};

ck_store_memo_t *ck_store_memo_new(void) {
  return calloc(1, sizeof(ck_store_memo_t));
}

static void memo_item_free(memo_item_t *it) {
  if (it) {
    json_decref(it->obj);
    free(it);
  }
}

void ck_store_memo_clear(ck_store_memo_t *m) {
  if (!m)
    return;
  size_t pos = 0;
  void *v;
  while (ck_strmap_next(&m->items, &pos, NULL, &v))
    memo_item_free(v);
  ck_strmap_free(&m->items);
  memset(&m->items, 0, sizeof m->items);
}

void ck_store_memo_free(ck_store_memo_t *m) {
  ck_store_memo_clear(m);
  free(m);
}

void ck_store_memo_set_reduce(ck_store_memo_t *m, json_t *(*fn)(void *ctx, json_t *obj),
                              void *ctx) {
  if (m) {
    m->reduce = fn;
    m->reduce_ctx = ctx;
  }
}

/* What m keeps and hands for obj, a fresh parse (taken over): its
 * reducer's answer, or obj when there is none or it gives NULL. */
static json_t *memo_reduce(const ck_store_memo_t *m, json_t *obj) {
  if (!m || !m->reduce || !obj)
    return obj;
  json_t *r = m->reduce(m->reduce_ctx, obj);
  if (!r)
    return obj;
  json_decref(obj);
  return r;
}

size_t ck_store_memo_len(const ck_store_memo_t *m) {
  return m ? m->items.len : 0;
}

/* Remember obj as key's parse at resourceVersion rv, for the snapshot
 * gen. A failure only costs a parse next time. */
static void memo_set(ck_store_memo_t *m, const char *key, size_t klen, uint64_t rv, json_t *obj,
                     uint32_t gen) {
  memo_item_t *it = malloc(sizeof *it + klen + 1);
  if (!it)
    return;
  *it = (memo_item_t){.rv = rv, .obj = json_incref(obj), .gen = gen};
  memcpy(it->key, key, klen + 1);
  void *old = NULL;
  if (ck_strmap_put(&m->items, it->key, it, &old) != 0) {
    memo_item_free(it);
    return;
  }
  memo_item_free(old);
}

/* The same for obj parsed from e; lock held (e's key lives in the store). */
static void memo_put(ck_store_memo_t *m, const entry_t *e, json_t *obj, uint32_t gen) {
  memo_set(m, key_of(e), e->klen, e->rv, obj, gen);
}

/* Forget what the snapshot gen did not return (deleted, or outside its
 * namespace). */
static void memo_sweep(ck_store_memo_t *m, uint32_t gen) {
  size_t n = 0, pos = 0;
  void *v;
  while (ck_strmap_next(&m->items, &pos, NULL, &v))
    n += ((memo_item_t *)v)->gen != gen;
  if (!n)
    return;
  memo_item_t **gone = malloc(n * sizeof(memo_item_t *));
  if (!gone) { /* cannot tell them apart later: forget everything */
    ck_store_memo_clear(m);
    return;
  }
  size_t k = 0;
  pos = 0;
  while (ck_strmap_next(&m->items, &pos, NULL, &v))
    if (((memo_item_t *)v)->gen != gen)
      gone[k++] = v;
  for (size_t i = 0; i < k; i++) {
    ck_strmap_del(&m->items, gone[i]->key);
    memo_item_free(gone[i]);
  }
  free(gone);
}

json_t *ck_store_get_memo(ck_store_t *s, const char *key, ck_store_memo_t *memo) {
  if (!memo)
    return ck_store_get(s, key);
  pthread_rwlock_rdlock(&s->lock);
  entry_t *e = ck_strmap_get(&s->items, key);
  memo_item_t *it = e ? ck_strmap_get(&memo->items, key) : NULL;
  json_t *o = NULL;
  if (it && e->rv && it->rv == e->rv) {
    o = json_incref(it->obj);
  } else if (e && (o = memo_reduce(memo, parse(e))) != NULL) {
    memo_put(memo, e, o, memo->gen);
  }
  pthread_rwlock_unlock(&s->lock);
  return o;
}

void ck_store_memo_remember(ck_store_memo_t *memo, const char *key, json_t *obj) {
  uint64_t rv = ck_store_rv_of(obj);
  if (memo && rv && key && *key) {
    json_t *kept = memo_reduce(memo, json_incref(obj));
    memo_set(memo, key, strlen(key), rv, kept, memo->gen);
    json_decref(kept);
  }
}

int ck_store_snapshot(ck_store_t *s, const char *ns, ck_store_memo_t *memo, json_t **out) {
  *out = NULL;
  json_t *arr = json_array();
  if (!arr)
    return CK_ENOMEM;
  uint32_t gen = memo ? ++memo->gen : 0;
  pthread_rwlock_rdlock(&s->lock);
  const ck_strmap_t *m = &s->items;
  if (ns)
    members_of(s, CK_INDEX_NAMESPACE, ns, &m); /* the namespace index always exists */
  size_t n = m ? m->len : 0;
  /* sn.o: the snapshot in order; the entries to parse go to sn.e (their
   * places in sn.at), the rest come from the memo. */
  snap_t sn = {.e = n ? malloc(n * sizeof(entry_t *)) : NULL,
               .at = n ? malloc(n * sizeof *sn.at) : NULL,
               .o = n ? calloc(n, sizeof(json_t *)) : NULL};
  json_t **o = sn.o;
  int rc = 0;
  if (n && (!o || !sn.at || !sn.e)) {
    rc = CK_ENOMEM;
  } else if (n) {
    size_t pos = 0, k = 0;
    void *v;
    while (ck_strmap_next(m, &pos, NULL, &v)) {
      entry_t *e = v;
      memo_item_t *it = memo ? ck_strmap_get(&memo->items, key_of(e)) : NULL;
      if (it && e->rv && it->rv == e->rv) {
        it->gen = gen;
        o[k] = json_incref(it->obj);
      } else {
        sn.at[sn.n] = k;
        sn.e[sn.n++] = e;
      }
      k++;
    }
    /* With a reducer, at most SNAP_MIN whole trees at a time: each batch
     * is reduced before the next is parsed. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t batch = memo && memo->reduce ? SNAP_MIN : sn.n;
    for (size_t b = 0; rc == 0 && b < sn.n; b += batch) {
      snap_t part = {.e = sn.e + b, .at = sn.at + b, .o = o,
                     .n = sn.n - b < batch ? sn.n - b : batch};
      atomic_init(&part.oom, false);
      int width = part.n < SNAP_MIN || cpus < 2 ? 1 : cpus > 4 ? 4 : (int)cpus;
      ck_parallel_for((part.n + SNAP_CHUNK - 1) / SNAP_CHUNK, width, snap_chunk, &part);
      if (atomic_load(&part.oom))
        rc = CK_ENOMEM;
      for (size_t i = 0; memo && rc == 0 && i < part.n; i++) {
        json_t **slot = &o[part.at[i]];
        *slot = memo_reduce(memo, *slot);
        memo_put(memo, part.e[i], *slot, gen);
      }
    }
  }
  pthread_rwlock_unlock(&s->lock);
  for (size_t i = 0; i < n && o; i++)
    if (rc == 0 && json_array_append_new(arr, o[i]) != 0)
      rc = CK_ENOMEM;
    else if (rc != 0)
      json_decref(o[i]);
  free(o);
  free(sn.at);
  free(sn.e);
  if (memo && rc == 0)
    memo_sweep(memo, gen);
  if (rc) {
    json_decref(arr);
    return rc;
  }
  *out = arr;
  return 0;
}

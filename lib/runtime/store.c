/* The informer's cache. Objects are kept as compact JSON text: jansson
 * trees cost several times the text (a hashtable and an allocation per
 * member), and the cache is the bulk of an operator's memory. Readers get
 * a freshly parsed copy they own, so no caller can corrupt the cache. */
#include "runtime/store.h"

#include "crdkit/error.h"
#include "util/strmap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
  char *key;
  char *json;
  size_t len;
  uint64_t rv;
  uint32_t mark;
  char ***ivals; /* per index: NULL-terminated array of values, or NULL */
} entry_t;

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

struct ck_store {
  pthread_rwlock_t lock;
  ck_strmap_t items; /* key -> entry */
  index_t *idx;
  size_t nidx;
  size_t bytes;
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

static void free_vals(char **v) {
  if (!v)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

static void entry_free(ck_store_t *s, entry_t *e) {
  if (e->ivals)
    for (size_t i = 0; i < s->nidx; i++)
      free_vals(e->ivals[i]);
  free(e->ivals);
  free(e->json);
  free(e->key);
  free(e);
}

void ck_store_free(ck_store_t *s) {
  if (!s)
    return;
  size_t pos = 0;
  void *v;
  while (ck_strmap_next(&s->items, &pos, NULL, &v))
    entry_free(s, v);
  ck_strmap_free(&s->items);
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

/* ---- indexes (write lock held) ------------------------------------------ */

typedef struct vals {
  char **v;
  size_t n, cap;
  bool oom;
} vals_t;

static void collect(void *ectx, const char *value) {
  vals_t *vs = ectx;
  if (vs->oom || !value)
    return;
  for (size_t i = 0; i < vs->n; i++)
    if (strcmp(vs->v[i], value) == 0)
      return;
  if (vs->n + 2 > vs->cap) {
    size_t nc = vs->cap ? vs->cap * 2 : 4;
    char **nv = realloc(vs->v, nc * sizeof *nv);
    if (!nv) {
      vs->oom = true;
      return;
    }
    vs->v = nv;
    vs->cap = nc;
  }
  char *d = strdup(value);
  if (!d) {
    vs->oom = true;
    return;
  }
  vs->v[vs->n++] = d;
  vs->v[vs->n] = NULL;
}

static void index_remove(ck_store_t *s, entry_t *e) {
  if (!e->ivals)
    return;
  for (size_t i = 0; i < s->nidx; i++) {
    for (char **p = e->ivals[i]; p && *p; p++) {
      bucket_t *b = ck_strmap_get(&s->idx[i].buckets, *p);
      if (!b)
        continue;
      ck_strmap_del(&b->members, e->key);
      if (b->members.len == 0) {
        ck_strmap_del(&s->idx[i].buckets, b->value);
        ck_strmap_free(&b->members);
        free(b->value);
        free(b);
      }
    }
    free_vals(e->ivals[i]);
    e->ivals[i] = NULL;
  }
}

/* Index e under the values of obj. On allocation failure the entry is
 * left out of some index (the cache itself stays right). */
static int index_add(ck_store_t *s, entry_t *e, const json_t *obj) {
  if (!s->nidx)
    return 0;
  if (!e->ivals && !(e->ivals = calloc(s->nidx, sizeof *e->ivals)))
    return CK_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < s->nidx; i++) {
    vals_t vs = {0};
    s->idx[i].fn(s->idx[i].ctx, obj, collect, &vs);
    if (vs.oom)
      rc = CK_ENOMEM;
    e->ivals[i] = vs.v;
    for (size_t j = 0; j < vs.n; j++) {
      bucket_t *b = ck_strmap_get(&s->idx[i].buckets, vs.v[j]);
      if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || !(b->value = strdup(vs.v[j])) ||
            ck_strmap_put(&s->idx[i].buckets, b->value, b, NULL) != 0) {
          if (b)
            free(b->value);
          free(b);
          rc = CK_ENOMEM;
          continue;
        }
      }
      if (ck_strmap_put(&b->members, e->key, e, NULL) != 0)
        rc = CK_ENOMEM;
    }
  }
  return rc;
}

/* ---- writes -------------------------------------------------------------- */

static json_t *parse(const entry_t *e) {
  return json_loadb(e->json, e->len, 0, NULL);
}

int ck_store_upsert(ck_store_t *s, const json_t *obj, uint32_t mark, bool only_newer,
                    bool need_old, json_t **old_out) {
  if (old_out)
    *old_out = NULL;
  char *key = ck_store_key_of(obj);
  if (!key)
    return CK_EINVAL;
  uint64_t rv = ck_store_rv_of(obj);
  pthread_rwlock_wrlock(&s->lock);
  entry_t *e = ck_strmap_get(&s->items, key);
  if (e && rv && e->rv) {
    if (rv == e->rv) {
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
  char *text = json_dumps(obj, JSON_COMPACT);
  if (!text) {
    free(key);
    return CK_ENOMEM;
  }
  size_t len = strlen(text);

  pthread_rwlock_wrlock(&s->lock);
  e = ck_strmap_get(&s->items, key);
  int result;
  if (e) {
    if (only_newer && rv && e->rv && rv <= e->rv) {
      pthread_rwlock_unlock(&s->lock);
      free(text);
      free(key);
      return CK_STORE_STALE;
    }
    if (need_old && old_out)
      *old_out = parse(e);
    index_remove(s, e);
    s->bytes -= e->len;
    free(e->json);
    free(key);
    result = CK_STORE_UPDATED;
  } else {
    e = calloc(1, sizeof *e);
    if (!e || ck_strmap_put(&s->items, key, e, NULL) != 0) {
      pthread_rwlock_unlock(&s->lock);
      free(e);
      free(text);
      free(key);
      return CK_ENOMEM;
    }
    e->key = key;
    result = CK_STORE_ADDED;
  }
  e->json = text;
  e->len = len;
  e->rv = rv;
  e->mark = mark;
  s->bytes += len;
  index_add(s, e, obj);
  pthread_rwlock_unlock(&s->lock);
  return result;
}

static json_t *remove_entry(ck_store_t *s, entry_t *e, bool want) {
  json_t *last = want ? parse(e) : NULL;
  index_remove(s, e);
  ck_strmap_del(&s->items, e->key);
  s->bytes -= e->len;
  entry_free(s, e);
  return last;
}

int ck_store_delete(ck_store_t *s, const char *key, uint64_t min_rv, json_t **old_out) {
  if (old_out)
    *old_out = NULL;
  pthread_rwlock_wrlock(&s->lock);
  entry_t *e = ck_strmap_get(&s->items, key);
  if (!e || (min_rv && e->rv > min_rv)) {
    pthread_rwlock_unlock(&s->lock);
    return 0;
  }
  json_t *last = remove_entry(s, e, old_out != NULL);
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

void ck_store_sweep(ck_store_t *s, const char *ns, uint32_t mark,
                    void (*fn)(void *ctx, json_t *obj), void *ctx) {
  json_t *gone = json_array();
  pthread_rwlock_wrlock(&s->lock);
  /* Pick the victims first: removal moves slots under an iteration. */
  entry_t **victims = NULL;
  size_t n = 0, pos = 0;
  void *v;
  if (s->items.len && (victims = malloc(s->items.len * sizeof(entry_t *))))
    while (ck_strmap_next(&s->items, &pos, NULL, &v)) {
      entry_t *e = v;
      if (e->mark != mark && in_ns(e->key, ns))
        victims[n++] = e;
    }
  for (size_t k = 0; k < n; k++) {
    json_t *last = remove_entry(s, victims[k], gone != NULL);
    if (last && json_array_append_new(gone, last) != 0)
      break;
  }
  free(victims);
  pthread_rwlock_unlock(&s->lock);
  for (size_t i = 0; i < json_array_size(gone); i++)
    fn(ctx, json_array_get(gone, i));
  json_decref(gone);
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

int ck_store_by_index(ck_store_t *s, const char *index, const char *value,
                      int (*fn)(void *ctx, json_t *obj), void *ctx) {
  pthread_rwlock_rdlock(&s->lock);
  index_t *ix = NULL;
  for (size_t i = 0; i < s->nidx; i++)
    if (strcmp(s->idx[i].name, index) == 0)
      ix = &s->idx[i];
  int rc = CK_EINVAL;
  if (ix) {
    bucket_t *b = ck_strmap_get(&ix->buckets, value);
    rc = b ? each(&b->members, fn, ctx) : 0;
  }
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

/* Lists parsed by earlier merges, kept so that a merge whose live text is
 * one it parsed or wrote a moment ago does not parse it again: in a burst
 * each merge reads what the last one wrote, and the round-trip check of
 * that write has already parsed it. Two slots per kind (the text read and
 * the text written), least recently used replaced.
 *
 * And the objects the last merge read, by the address of their json_t: in
 * a burst most objects are handed in again unchanged, as the same json_t
 * (the informer's snapshot memo), and reading one (validating its spec,
 * normalising its ARNs) costs more than copying what that gave. The cache
 * holds a reference to each, so an address cannot be reused by another
 * object while it is here.
 *
 * An object can also be read ahead of the merge and its parse keyed by a
 * small stand-in (aa_cache_object_read), which the caller hands in the
 * object's place from then on, so that no one keeps the object's whole
 * tree between merges only to be recognised by its address.
 *
 * And the text of each entry the last emit wrote, with the entry it was
 * found to parse back to: an emit's round-trip check then parses back
 * only the entries whose text it has not checked before (emit.c). Each
 * such entry is also found by its address, which the emit looks up
 * first: an entry handed in again (the same json_t, from the parse kept
 * for its object or from the list written last) is not written out and
 * looked up by its text again; its entry hash is kept there too. */
#include "cache.h"

#include "util/strmap.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 2

typedef struct cslot {
  char *text; /* NULL: empty */
  size_t len;
  aa_list_t list;
  uint64_t used; /* tick of the last use */
} cslot_t;

typedef struct annslot {
  char *text; /* NULL: empty */
  size_t len;
  json_t *recs;
  uint64_t used;
} annslot_t;

/* What both memos below start with: their key in the map, and the last
 * merge (objects) or emit of its kind (entries) that used them. */
typedef struct memo {
  const char *key;
  uint64_t gen;
  void (*free)(struct memo *m);
} memo_t;

typedef struct objmemo {
  memo_t m;            /* m.key: keybuf */
  json_t *obj;         /* held */
  aa_obj_status_t st;  /* as aa_object_parse left it */
  json_t *desired;     /* held; NULL for an invalid object */
  char keybuf[2 * sizeof(uintptr_t) + 1];
} objmemo_t;

typedef struct entmemo {
  memo_t m;      /* m.key: text, the entry's block as emitted (malloc'd) */
  char *text;
  size_t len;    /* strlen(text) */
  json_t *entry; /* held: what text parses back to (shared, never modified) */
  ck_strmap_t *ptrs; /* the map that also finds it by entry's address */
  char pkey[2 * sizeof(uintptr_t) + 1]; /* that key */
  char hash[17]; /* aa_entry_hash of entry, or "" until asked for */
} entmemo_t;

struct aa_cache {
  cslot_t s[2][CACHE_SLOTS];
  uint64_t tick;
  size_t hits;
  ck_strmap_t objs;  /* key (the json_t's address) -> objmemo_t */
  char *finalizer;   /* what the objects were read with */
  uint64_t gen;      /* the merge reading now */
  size_t obj_hits;
  annslot_t ann[CACHE_SLOTS]; /* v1 ownership annotations read or written */
  ck_strmap_t ents[2];        /* per kind: entry text -> entmemo_t */
  ck_strmap_t eptr[2];        /* per kind: the entry's address -> the same */
  uint64_t egen[2];           /* per kind: the emit in progress */
};

aa_cache_t *aa_cache_new(void) {
  return calloc(1, sizeof(aa_cache_t));
}

size_t aa_cache_hits(const aa_cache_t *cache) {
  return cache ? cache->hits : 0;
}

size_t aa_cache_object_hits(const aa_cache_t *cache) {
  return cache ? cache->obj_hits : 0;
}

static void objmemo_free(memo_t *mm) {
  objmemo_t *m = (objmemo_t *)mm;
  json_decref(m->obj);
  json_decref(m->desired);
  aa_obj_status_clear(&m->st);
  free(m);
}

/* Free every memo of map and empty it. */
static void memos_clear(ck_strmap_t *map) {
  size_t pos = 0;
  void *v;
  while (ck_strmap_next(map, &pos, NULL, &v))
    ((memo_t *)v)->free(v);
  ck_strmap_free(map);
  memset(map, 0, sizeof *map);
}

/* Free the memos of map that gen did not use. */
static void memos_sweep(ck_strmap_t *map, uint64_t gen) {
  size_t n = 0, pos = 0;
  void *v;
  while (ck_strmap_next(map, &pos, NULL, &v))
    n += ((memo_t *)v)->gen != gen;
  memo_t **gone = n ? malloc(n * sizeof(memo_t *)) : NULL;
  if (n && !gone) {
    memos_clear(map); /* cannot tell them apart: forget everything */
    return;
  }
  size_t k = 0;
  pos = 0;
  while (k < n && ck_strmap_next(map, &pos, NULL, &v))
    if (((memo_t *)v)->gen != gen)
      gone[k++] = v;
  for (size_t i = 0; i < k; i++) {
    ck_strmap_del(map, gone[i]->key);
    gone[i]->free(gone[i]);
  }
  free(gone);
}

/* The key of a json_t by its address: hex digits (a lookup per object
 * and per entry of every merge; no printf). */
static void obj_key(const json_t *obj, char key[2 * sizeof(uintptr_t) + 1]) {
  uintptr_t v = (uintptr_t)obj;
  size_t n = 0;
  do {
    key[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v);
  key[n] = '\0';
}

int aa_cache_object_get(aa_cache_t *cache, const json_t *obj, const char *finalizer,
                        aa_obj_status_t *st, json_t **desired) {
  if (!cache->finalizer || strcmp(cache->finalizer, finalizer) != 0)
    return 0;
  char key[2 * sizeof(uintptr_t) + 1];
  obj_key(obj, key);
  objmemo_t *m = ck_strmap_get(&cache->objs, key);
  if (!m || m->obj != obj)
    return 0;
  if (aa_obj_status_copy(st, &m->st))
    return CK_ENOMEM;
  *desired = json_incref(m->desired);
  m->m.gen = cache->gen;
  cache->obj_hits++;
  return 1;
}

int aa_cache_object_put(aa_cache_t *cache, const json_t *obj, const char *finalizer,
                        const aa_obj_status_t *st, const json_t *desired) {
  if (!cache->finalizer || strcmp(cache->finalizer, finalizer) != 0) {
    char *f = strdup(finalizer);
    if (!f)
      return -1;
    memos_clear(&cache->objs);
    free(cache->finalizer);
    cache->finalizer = f;
  }
  objmemo_t *m = calloc(1, sizeof *m);
  if (!m)
    return -1;
  if (aa_obj_status_copy(&m->st, st)) {
    free(m);
    return -1;
  }
  m->obj = json_incref((json_t *)obj);
  m->desired = json_incref((json_t *)desired);
  obj_key(obj, m->keybuf);
  m->m = (memo_t){.key = m->keybuf, .gen = cache->gen, .free = objmemo_free};
  void *old = NULL;
  if (ck_strmap_put(&cache->objs, m->m.key, m, &old) != 0) {
    objmemo_free(&m->m);
    return -1;
  }
  if (old)
    objmemo_free(old);
  return 0;
}

/* What a stand-in says, to whoever prints one. */
#define STAND_IN_TEXT "aws-auth: parsed, held by the merge cache"

bool aa_is_stand_in(const json_t *obj) {
  return json_is_string(obj) && strcmp(json_string_value(obj), STAND_IN_TEXT) == 0;
}

int aa_cache_object_read(aa_cache_t *cache, const json_t *obj, const char *finalizer,
                         json_t **stand_in) {
  *stand_in = NULL;
  if (!cache || !obj || aa_is_stand_in(obj))
    return 0;
  const char *fin = finalizer ? finalizer : AA_DEFAULT_FINALIZER;
  aa_obj_status_t st;
  json_t *desired = NULL;
  int rc = aa_object_parse(obj, fin, &st, &desired);
  json_t *s = rc == 0 ? json_string(STAND_IN_TEXT) : NULL;
  if (s && aa_cache_object_put(cache, s, fin, &st, desired) == 0)
    *stand_in = s; /* the cache holds it too */
  else
    json_decref(s);
  aa_obj_status_clear(&st);
  json_decref(desired);
  return *stand_in ? 1 : CK_ENOMEM;
}

void aa_cache_object_sweep(aa_cache_t *cache) {
  memos_sweep(&cache->objs, cache->gen);
  cache->gen++;
}

static void entmemo_free(memo_t *mm) {
  entmemo_t *m = (entmemo_t *)mm;
  if (m->ptrs && ck_strmap_get(m->ptrs, m->pkey) == m)
    ck_strmap_del(m->ptrs, m->pkey);
  free(m->text);
  json_decref(m->entry);
  free(m);
}

const json_t *aa_cache_entry_get(aa_cache_t *cache, aa_kind_t k, const char *text) {
  entmemo_t *m = ck_strmap_get(&cache->ents[k], text);
  if (!m)
    return NULL;
  m->m.gen = cache->egen[k];
  return m->entry;
}

void aa_cache_entry_put(aa_cache_t *cache, aa_kind_t k, const char *text, json_t *entry) {
  entmemo_t *m = calloc(1, sizeof *m);
  if (!m || !(m->text = strdup(text))) {
    free(m);
    return;
  }
  m->len = strlen(text);
  m->entry = json_incref(entry);
  m->m = (memo_t){.key = m->text, .gen = cache->egen[k], .free = entmemo_free};
  void *old = NULL;
  if (ck_strmap_put(&cache->ents[k], m->m.key, m, &old) != 0) {
    entmemo_free(&m->m);
    return;
  }
  if (old)
    entmemo_free(old);
  /* Also by the entry's address; without it (out of memory) the entry is
   * only found by its text, as before. */
  obj_key(entry, m->pkey);
  void *was = NULL;
  if (ck_strmap_put(&cache->eptr[k], m->pkey, m, &was) == 0) {
    m->ptrs = &cache->eptr[k];
    if (was) /* an older memo of the same entry (never: one entry, one text) */
      ((entmemo_t *)was)->ptrs = NULL;
  }
}

/* The memo of this very entry (by its address), or NULL. */
static entmemo_t *entmemo_of(aa_cache_t *cache, aa_kind_t k, const json_t *entry) {
  char key[2 * sizeof(uintptr_t) + 1];
  obj_key(entry, key);
  entmemo_t *m = ck_strmap_get(&cache->eptr[k], key);
  return m && m->entry == entry ? m : NULL;
}

const char *aa_cache_entry_text(aa_cache_t *cache, aa_kind_t k, const json_t *entry, size_t *len) {
  entmemo_t *m = entmemo_of(cache, k, entry);
  if (!m)
    return NULL;
  m->m.gen = cache->egen[k];
  *len = m->len;
  return m->text;
}

void aa_cache_entry_hash(aa_cache_t *cache, aa_kind_t k, const json_t *entry, char out[17]) {
  entmemo_t *m = cache ? entmemo_of(cache, k, entry) : NULL;
  if (m && m->hash[0]) {
    memcpy(out, m->hash, 17);
    return;
  }
  aa_entry_hash(entry, out);
  if (m && out[0] != '-') /* a failed hash is not kept: asked again next time */
    memcpy(m->hash, out, 17);
}

void aa_cache_entry_sweep(aa_cache_t *cache, aa_kind_t k) {
  memos_sweep(&cache->ents[k], cache->egen[k]);
  cache->egen[k]++;
}

static void cslot_clear(cslot_t *s) {
  free(s->text);
  aa_list_free(&s->list);
  memset(s, 0, sizeof *s);
}

static void annslot_clear(annslot_t *a) {
  free(a->text);
  json_decref(a->recs);
  memset(a, 0, sizeof *a);
}

json_t *aa_cache_annotation_get(aa_cache_t *cache, const char *text, size_t len) {
  for (int i = 0; i < CACHE_SLOTS; i++) {
    annslot_t *a = &cache->ann[i];
    if (a->text && a->len == len && memcmp(a->text, text, len) == 0) {
      a->used = ++cache->tick;
      return a->recs;
    }
  }
  return NULL;
}

void aa_cache_annotation_put(aa_cache_t *cache, const char *text, size_t len, json_t *recs) {
  if (aa_cache_annotation_get(cache, text, len))
    return;
  char *copy = malloc(len + 1);
  if (!copy)
    return;
  memcpy(copy, text, len);
  copy[len] = '\0';
  annslot_t *a = cache->ann[0].used <= cache->ann[1].used ? &cache->ann[0] : &cache->ann[1];
  annslot_clear(a);
  *a = (annslot_t){.text = copy, .len = len, .recs = json_incref(recs), .used = ++cache->tick};
}

void aa_cache_clear(aa_cache_t *cache) {
  if (!cache)
    return;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < CACHE_SLOTS; i++)
      cslot_clear(&cache->s[k][i]);
  for (int i = 0; i < CACHE_SLOTS; i++)
    annslot_clear(&cache->ann[i]);
  memos_clear(&cache->objs);
  for (int k = 0; k < 2; k++) {
    memos_clear(&cache->ents[k]); /* each memo leaves eptr[k] as it goes */
    ck_strmap_free(&cache->eptr[k]);
    memset(&cache->eptr[k], 0, sizeof cache->eptr[k]);
  }
}

void aa_cache_free(aa_cache_t *cache) {
  aa_cache_clear(cache);
  if (cache)
    free(cache->finalizer);
  free(cache);
}

int aa_cache_find(aa_cache_t *cache, aa_kind_t k, const char *text, size_t len) {
  for (int i = 0; i < CACHE_SLOTS; i++) {
    cslot_t *s = &cache->s[k][i];
    if (s->text && s->len == len && memcmp(s->text, text, len) == 0) {
      s->used = ++cache->tick;
      cache->hits++;
      return i;
    }
  }
  return -1;
}

int aa_cache_put(aa_cache_t *cache, aa_kind_t k, const char *text, size_t len, aa_list_t *list,
                 int keep) {
  char *copy = malloc(len + 1);
  if (!copy)
    return -1;
  memcpy(copy, text, len);
  copy[len] = '\0';
  /* The least recently used slot other than keep (CACHE_SLOTS >= 2). */
  int victim = keep == 0 ? 1 : 0;
  for (int i = victim + 1; i < CACHE_SLOTS; i++)
    if (i != keep && cache->s[k][i].used < cache->s[k][victim].used)
      victim = i;
  cslot_t *s = &cache->s[k][victim];
  cslot_clear(s);
  s->text = copy;
  s->len = len;
  s->list = *list;
  s->used = ++cache->tick;
  memset(list, 0, sizeof *list);
  return victim;
}

const aa_list_t *aa_cache_list(const aa_cache_t *cache, aa_kind_t k, int slot) {
  return &cache->s[k][slot].list;
}

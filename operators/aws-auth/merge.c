/* The deterministic merge of AWSAuth objects into the live aws-auth data,
 * with the ownership annotation, drift handling and the safety interlocks.
 * Input order never matters: objects are ranked by age then name, owned
 * entries are sorted by key, foreign entries keep their live order.
 *
 * Every step is O(n log n) or better in the number of objects, entries and
 * records: objects are found by "ns/name" (a string map) or by owner hash
 * (a sorted array), records by key (a string map) or by key hash (they are
 * sorted by it), so 10,000 objects and entries reconcile in one pass.
 *
 * The ownership annotation has two encodings (see awsauth.h): v1, readable
 * JSON, written whenever it fits in the annotations' 256 KiB, and v2,
 * 16-byte records in base64, written only when v1 would not fit. Both are
 * read into the same rec_t, and the merge works on that.
 *
 * How many bits each v2 hash needs, and why:
 *  - 64-bit key hashes decide whether a live entry is ours: a record whose
 *    key hash equals a live entry's key is taken as that entry's record.
 *    A collision would make a foreign entry look owned (and then be
 *    rewritten or removed), so it must be infeasible to forge: finding a
 *    second key with a given 64-bit SHA-256 prefix takes ~2^64 hashes, and
 *    an accidental collision among 12,000 records and ~12,000 live keys
 *    has odds of about 2^-37.
 *  - 40-bit owner hashes only pick the owner of a record among the AWSAuth
 *    objects that exist; creating objects already needs RBAC on the
 *    watched namespaces, which grants far more than a collision would.
 *    Two of 10,000 objects colliding by accident: about 2^-14.
 *  - 24-bit entry hashes only detect edits by someone else (drift); an
 *    edit that keeps the same 24 bits goes unnoticed with odds 2^-24.
 * v1 keeps the whole key and owner and 64 bits of entry hash. */
#include "awsauth.h"

#include "util/base64.h"
#include "util/strmap.h"
#include "util/timeutil.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V2_PREFIX "v2:"
#define V2_REC 16 /* bytes per v2 record: 8 key hash, 5 owner hash, 3 entry hash */

typedef struct obj {
  aa_obj_status_t *st;
  json_t *desired; /* valid objects only */
  int64_t created; /* INT64_MAX when unknown: ranks as the newest */
  char *id;        /* "ns/name" */
  struct obj *next_same; /* the next object (input order) with the same id */
  struct obj *last_same; /* on the first object of an id: the last one */
  uint64_t oh_uid, oh_any; /* 40-bit owner hashes of id\0uid and of id\0"" */
} obj_t;

/* One record of the ownership annotation as found. */
typedef struct rec {
  const char *key;   /* NULL: a v2 record whose key no live entry or claim has shown */
  const json_t *v1;  /* v1: the record object (borrowed from old_recs); v2: NULL */
  uint64_t khash;    /* v2: first 64 bits of SHA-256 of the key */
  uint64_t ohash;    /* v2: 40 bits of owner hash */
  uint32_t ehash;    /* v2: 24 bits of entry hash */
} rec_t;

/* One record of the annotation to write. */
typedef struct nrec {
  const char *key;      /* NULL only for a carried v2 record with an unknown key */
  const rec_t *carried; /* kept as found, or NULL: written now for `owner` */
  const obj_t *owner;   /* written for / the carried record's owner (NULL: gone) */
  char hash[17];        /* written now: the entry's hash; carried v2: the v1 hash */
  uint32_t ehash;       /* carried v1: the 24 bits a v2 record gets */
} nrec_t;

/* One key of the owned part of the output. */
typedef struct owned {
  const char *key; /* borrowed from a record key or a desired entry */
  aa_kind_t kind;
  json_t *entries; /* array; may be empty for a frozen key that vanished */
} owned_t;

typedef struct ohix {
  uint64_t h; /* owner hash */
  size_t i;   /* input index of an object with it */
} ohix_t;

typedef struct ctx {
  const aa_opts_t *o;
  aa_result_t *r;
  obj_t *objs;       /* input order */
  obj_t **rank;      /* oldest first */
  size_t n;
  ck_strmap_t ids;   /* "ns/name" -> first obj_t with it (input order) */
  ohix_t *ohix;      /* 2n: both owner hashes of every object, sorted */
  bool ohashed;      /* oh_uid/oh_any and ohix are filled */
  EVP_MD *sha256;
  EVP_MD_CTX *md;
  aa_list_t live[2];
  int live_slot[2];  /* the cache slot live[k] is borrowed from, or -1 (ours) */
  json_t *idx[2];    /* key -> [index in live list] */
  bool *foreign[2];  /* per live entry: emitted in the foreign part */
  int fmt;           /* the annotation as found: 1 (also absent/unreadable) or 2 */
  json_t *old_recs;  /* v1 as found; an empty object otherwise */
  char *old_text;    /* v2 as found */
  unsigned char *old_bytes; /* v2 records as found */
  size_t old_nbytes;
  rec_t *old;        /* v1: any order; v2: sorted by khash */
  size_t nold;
  ck_strmap_t old_by_key; /* key -> rec_t* (v1: every record; v2: keys seen live) */
  nrec_t *nrec;
  size_t nnrec, capnrec;
  bool out_v2;       /* the annotation written is v2 */
  json_t *claims;    /* key -> rank index of the winner; owns the keys in own[] */
  owned_t *own;
  size_t nown, capown;
  char nodes_msg[512];
} ctx_t;

static int block(ctx_t *c, aa_block_t b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int block(ctx_t *c, aa_block_t b, const char *fmt, ...) {
  if (c->r->blocked)
    return 0; /* the first reason is the one to act on */
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  c->r->blocked = b;
  c->r->blocked_msg = strdup(msg);
  return c->r->blocked_msg ? 0 : CK_ENOMEM;
}

/* ---- hashes ----------------------------------------------------------------- */

/* The first 64 bits of SHA-256(a || b), big-endian. A failure (never seen
 * with a fetched digest and a live context) gives 0. */
static uint64_t sha64(ctx_t *c, const void *a, size_t na, const void *b, size_t nb) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (!EVP_DigestInit_ex2(c->md, c->sha256, NULL) || !EVP_DigestUpdate(c->md, a, na) ||
      (nb && !EVP_DigestUpdate(c->md, b, nb)) || !EVP_DigestFinal_ex(c->md, d, &dl) || dl < 8)
    return 0;
  uint64_t h = 0;
  for (int i = 0; i < 8; i++)
    h = h << 8 | d[i];
  return h;
}

static uint64_t key_hash(ctx_t *c, const char *key) { return sha64(c, key, strlen(key), NULL, 0); }

/* 40 bits of SHA-256 of ns "/" name "\0" uid. */
static uint64_t owner_hash(ctx_t *c, const char *id, const char *uid) {
  return sha64(c, id, strlen(id) + 1, uid, strlen(uid)) >> 24;
}

/* The first 24 bits of a hex entry hash (6 lower-case hex digits), or -1. */
static long hex24(const char *h) {
  long v = 0;
  if (!h)
    return -1;
  for (int i = 0; i < 6; i++) {
    char ch = h[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (d < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

/* A v1 record's hash against the live entry's (16 hex digits). A 6-digit
 * hash is one carried over from v2: it compares 24 bits. */
static bool v1_hash_matches(const char *live, const char *rh) {
  if (!rh)
    return false;
  if (strcmp(live, rh) == 0)
    return true;
  return strlen(rh) == 6 && hex24(rh) >= 0 && hex24(rh) == hex24(live);
}

static bool rec_hash_matches(const rec_t *rec, const char *live) {
  if (rec->v1)
    return v1_hash_matches(live, json_string_value(json_object_get(rec->v1, "hash")));
  long h = hex24(live);
  return h >= 0 && (uint32_t)h == rec->ehash;
}

static int cmp_ohix(const void *a, const void *b) {
  const ohix_t *x = a, *y = b;
  if (x->h != y->h)
    return x->h < y->h ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Both owner hashes of every object, and the sorted index of them. */
static void ensure_ohash(ctx_t *c) {
  if (c->ohashed)
    return;
  c->ohashed = true;
  for (size_t i = 0; i < c->n; i++) {
    obj_t *o = &c->objs[i];
    o->oh_uid = owner_hash(c, o->id, o->st->uid);
    o->oh_any = o->st->uid[0] ? owner_hash(c, o->id, "") : o->oh_uid;
    c->ohix[2 * i] = (ohix_t){o->oh_uid, i};
    c->ohix[2 * i + 1] = (ohix_t){o->oh_any, i};
  }
  if (c->n)
    qsort(c->ohix, 2 * c->n, sizeof *c->ohix, cmp_ohix);
}

/* ---- owners and records ------------------------------------------------------ */

static aa_kind_t key_kind(const char *key) { return strstr(key, ":user/") ? AA_USERS : AA_ROLES; }

static int cmp_rank(const void *a, const void *b) {
  const obj_t *x = *(obj_t *const *)a, *y = *(obj_t *const *)b;
  if (x->created != y->created)
    return x->created < y->created ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* The object a record belongs to, the first in input order that matches:
 * v1 by ns/name, with the same uid unless either side has none (same name
 * but another uid: the owner was deleted and recreated); v2 by the owner
 * hash of its ns/name and uid, or of ns/name and "" (a record written for
 * an object without uid). */
static obj_t *find_owner(ctx_t *c, const rec_t *rec) {
  if (rec->v1) {
    const char *owner = json_string_value(json_object_get(rec->v1, "owner"));
    const char *uid = json_string_value(json_object_get(rec->v1, "uid"));
    if (!owner)
      return NULL;
    for (obj_t *o = ck_strmap_get(&c->ids, owner); o; o = o->next_same) {
      if (!uid || !uid[0] || !o->st->uid[0] || !strcmp(uid, o->st->uid))
        return o;
    }
    return NULL;
  }
  ensure_ohash(c);
  size_t lo = 0, hi = 2 * c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->ohix[mid].h < rec->ohash)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < 2 * c->n && c->ohix[lo].h == rec->ohash ? &c->objs[c->ohix[lo].i] : NULL;
}

static const char *rec_owner_name(ctx_t *c, const rec_t *rec) {
  if (rec->v1)
    return json_string_value(json_object_get(rec->v1, "owner"));
  const obj_t *o = find_owner(c, rec);
  return o ? o->id : "";
}

static rec_t *find_khash(ctx_t *c, uint64_t h) {
  size_t lo = 0, hi = c->nold;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->old[mid].khash < h)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < c->nold && c->old[lo].khash == h ? &c->old[lo] : NULL;
}

/* The record of `key` (stable storage), or NULL. A v2 record found by the
 * key's hash learns its key here. */
static rec_t *lookup_rec(ctx_t *c, const char *key) {
  rec_t *r = ck_strmap_get(&c->old_by_key, key);
  if (r || c->fmt != 2)
    return r;
  if (!(r = find_khash(c, key_hash(c, key))))
    return NULL;
  if (r->key) /* known under another key: two keys with one 64-bit hash */
    return strcmp(r->key, key) == 0 ? r : NULL;
  r->key = key;
  return r;
}

/* v2: give each record whose key hash matches a live entry that key. */
static int learn_live_keys(ctx_t *c) {
  if (c->fmt != 2)
    return 0;
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < c->live[k].n; i++) {
      const char *key = c->live[k].v[i].key;
      if (!key || ck_strmap_get(&c->old_by_key, key))
        continue;
      rec_t *r = find_khash(c, key_hash(c, key));
      if (!r || r->key)
        continue;
      r->key = key;
      if (ck_strmap_put(&c->old_by_key, key, r, NULL))
        return CK_ENOMEM;
    }
  }
  return 0;
}

static nrec_t *nrec_add(ctx_t *c, const char *key, const rec_t *carried, const obj_t *owner) {
  if (c->nnrec == c->capnrec) {
    size_t cap = c->capnrec ? c->capnrec * 2 : 64;
    nrec_t *n = realloc(c->nrec, cap * sizeof *n);
    if (!n)
      return NULL;
    c->nrec = n;
    c->capnrec = cap;
  }
  nrec_t *r = &c->nrec[c->nnrec++];
  *r = (nrec_t){.key = key, .carried = carried, .owner = owner};
  return r;
}

/* ---- the merge ---------------------------------------------------------------- */

static json_t *live_of(ctx_t *c, aa_kind_t k, const char *key) {
  return key ? json_object_get(c->idx[k], key) : NULL;
}

static const json_t *live_raw(ctx_t *c, aa_kind_t k, const json_t *ix, size_t i) {
  return c->live[k].v[json_integer_value(json_array_get(ix, i))].raw;
}

static bool live_nodes(ctx_t *c, aa_kind_t k, json_t *ix) {
  size_t i;
  json_t *v;
  json_array_foreach(ix, i, v) {
    if (c->live[k].v[json_integer_value(v)].nodes)
      return true;
  }
  return false;
}

static bool desired_nodes(const json_t *e) {
  size_t i;
  json_t *g;
  json_array_foreach(json_object_get(e, "groups"), i, g) {
    if (!strcmp(json_string_value(g), "system:nodes"))
      return true;
  }
  return false;
}

static owned_t *own_add(ctx_t *c, const char *key, aa_kind_t kind) {
  if (c->nown == c->capown) {
    size_t cap = c->capown ? c->capown * 2 : 64;
    owned_t *n = realloc(c->own, cap * sizeof *n);
    if (!n)
      return NULL;
    c->own = n;
    c->capown = cap;
  }
  owned_t *o = &c->own[c->nown];
  o->entries = json_array();
  if (!o->entries)
    return NULL;
  o->key = key;
  o->kind = kind;
  c->nown++;
  return o;
}

/* Keep the live entries of key as they are (owned, not foreign). */
static int keep_live(ctx_t *c, owned_t *ow, json_t *ix) {
  size_t i;
  json_t *v;
  json_array_foreach(ix, i, v) {
    if (json_array_append(ow->entries, c->live[ow->kind].v[json_integer_value(v)].raw))
      return CK_ENOMEM;
  }
  return 0;
}

static void not_foreign(ctx_t *c, aa_kind_t k, json_t *ix) {
  for (size_t i = 0; i < json_array_size(ix); i++)
    c->foreign[k][json_integer_value(json_array_get(ix, i))] = false;
}

/* The record of an entry written now for `o`; `hash` is the entry's
 * hash when already known, else NULL. */
static int set_rec(ctx_t *c, const char *key, const obj_t *o, const json_t *entry,
                   const char *hash) {
  nrec_t *n = nrec_add(c, key, NULL, o);
  if (!n)
    return CK_ENOMEM;
  if (hash)
    memcpy(n->hash, hash, sizeof n->hash);
  else
    aa_entry_hash(entry, n->hash);
  return 0;
}

/* Keep `rec` as found. When the annotation is written in the other
 * encoding, the record keeps what it says about the live entry: a hash
 * that matched it still matches, one that did not still does not. */
static int carry(ctx_t *c, const char *key, const rec_t *rec, aa_kind_t k, json_t *ix) {
  nrec_t *n = nrec_add(c, key, rec, find_owner(c, rec));
  if (!n)
    return CK_ENOMEM;
  char h[17] = "";
  long lh = -1;
  bool one = json_array_size(ix) == 1;
  if (one) {
    aa_entry_hash(live_raw(c, k, ix, 0), h);
    lh = hex24(h);
  }
  if (rec->v1) { /* the 24 bits of a v2 record */
    const char *rh = json_string_value(json_object_get(rec->v1, "hash"));
    if (one && v1_hash_matches(h, rh) && lh >= 0) {
      n->ehash = (uint32_t)lh;
    } else {
      long x = hex24(rh);
      n->ehash = x >= 0 ? (uint32_t)x : 0;
      if (lh >= 0 && n->ehash == (uint32_t)lh)
        n->ehash ^= 1; /* drifted: must not match */
    }
  } else if (one && lh >= 0 && (uint32_t)lh == rec->ehash) { /* the hash of a v1 record */
    memcpy(n->hash, h, sizeof h);
  } else {
    snprintf(n->hash, sizeof n->hash, "%06x", (unsigned)rec->ehash);
  }
  return 0;
}

static int drift_add(ctx_t *c, const char *key, aa_kind_t k, const rec_t *rec, size_t nlive,
                     bool repair) {
  c->r->drifted++;
  if (repair)
    c->r->repaired++;
  const char *owner = rec_owner_name(c, rec);
  json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s}", "key", key, "list", aa_kind_key(k), "owner",
                        owner ? owner : "", "what",
                        nlive == 0 ? "removed" : nlive > 1 ? "duplicated" : "modified", "action",
                        repair ? "repaired" : "reported");
  return d && !json_array_append_new(c->r->drift, d) ? 0 : CK_ENOMEM;
}

static int nodes_violation(ctx_t *c, const char *key, const char *why) {
  if (!c->nodes_msg[0])
    snprintf(c->nodes_msg, sizeof c->nodes_msg,
             "%s carries system:nodes and would be %s; only deleting the AWSAuth that owns it "
             "removes a node entry",
             key, why);
  return 0;
}

/* A key some valid, live object claims (the oldest one: `o`). */
static int merge_claim(ctx_t *c, obj_t *o, const json_t *want, const char *key) {
  aa_kind_t k = o->st->kind;
  json_t *ix = live_of(c, k, key);
  size_t nlive = json_array_size(ix);
  const rec_t *rec = lookup_rec(c, key);
  bool had_nodes = live_nodes(c, k, ix);
  owned_t *ow;
  if (!rec) {
    if (nlive && !o->st->take_over) {
      char msg[768];
      snprintf(msg, sizeof msg,
               "%s is mapped by an entry in %s that this operator did not create; it is kept "
               "(set spec.takeOver: true to adopt it)",
               key, aa_kind_key(k));
      o->st->conflicted = true;
      if (!o->st->conflict_msg && !(o->st->conflict_msg = strdup(msg)))
        return CK_ENOMEM;
      return 0;
    }
    if (o->st->suspended)
      return 0;
    not_foreign(c, k, ix);
    if (!(ow = own_add(c, key, k)) || json_array_append(ow->entries, (json_t *)want))
      return CK_ENOMEM;
    if (nlive)
      c->r->updated++;
    else
      c->r->added++;
    if (had_nodes && !desired_nodes(want))
      nodes_violation(c, key, "replaced by a takeOver without system:nodes");
    return set_rec(c, key, o, want, NULL);
  }
  not_foreign(c, k, ix);
  if (!(ow = own_add(c, key, k)))
    return CK_ENOMEM;
  if (o->st->suspended) /* frozen as found */
    return keep_live(c, ow, ix) ? CK_ENOMEM : carry(c, key, rec, k, ix);
  char h[17] = "";
  const json_t *first = nlive ? live_raw(c, k, ix, 0) : NULL;
  if (nlive == 1)
    aa_entry_hash(first, h);
  bool drifted = nlive != 1 || !rec_hash_matches(rec, h);
  /* The live entry is what we want: its hash is the one to record. */
  bool same = nlive == 1 && json_equal((json_t *)first, (json_t *)want);
  if (drifted && same)
    drifted = false; /* someone already made it what we want */
  int rc;
  if (drifted && c->o->drift == AA_DRIFT_REPORT) {
    if ((rc = drift_add(c, key, k, rec, nlive, false)) || (rc = keep_live(c, ow, ix)))
      return rc;
    return carry(c, key, rec, k, ix);
  }
  if (drifted && (rc = drift_add(c, key, k, rec, nlive, true)))
    return rc;
  if (json_array_append(ow->entries, (json_t *)want))
    return CK_ENOMEM;
  if (!drifted && !same)
    c->r->updated++;
  if (had_nodes && !desired_nodes(want)) {
    /* Handing over from a deleted owner is the owner's deletion. */
    obj_t *prev = find_owner(c, rec);
    if (!(prev && prev != o && prev->st->deleting && !prev->st->retain))
      nodes_violation(c, key, "rewritten without system:nodes");
  }
  return set_rec(c, key, o, want, same && h[0] != '-' ? h : NULL);
}

/* An owned key no object claims now. key NULL: a v2 record whose key is
 * unknown (nothing live has it). */
static int merge_unclaimed(ctx_t *c, const char *key, const rec_t *rec) {
  aa_kind_t k = key ? key_kind(key) : AA_ROLES;
  json_t *ix = live_of(c, k, key);
  size_t nlive = json_array_size(ix);
  obj_t *o = find_owner(c, rec);
  if (o && o->st->deleting && o->st->retain)
    return 0; /* stays in place as a foreign entry; record dropped */
  not_foreign(c, k, ix);
  if (o && !o->st->deleting && (!o->st->valid || o->st->suspended)) {
    /* An invalid or suspended owner changes nothing: a typo in a spec must
     * not revoke access. */
    if (key) {
      owned_t *ow = own_add(c, key, k);
      if (!ow || keep_live(c, ow, ix))
        return CK_ENOMEM;
    }
    return carry(c, key, rec, k, ix);
  }
  if (nlive) {
    c->r->removed++;
    if (live_nodes(c, k, ix) && !(o && o->st->deleting))
      nodes_violation(c, key, o ? "removed from its AWSAuth's spec" : "removed (its owner is gone)");
  }
  return 0;
}

static int cmp_owned(const void *a, const void *b) {
  return strcmp(((const owned_t *)a)->key, ((const owned_t *)b)->key);
}

static int cmp_rec_key(const void *a, const void *b) {
  return strcmp((*(const rec_t *const *)a)->key, (*(const rec_t *const *)b)->key);
}

/* ---- the parse cache ----------------------------------------------------------- */

#define CACHE_SLOTS 2

typedef struct cslot {
  char *text; /* NULL: empty */
  size_t len;
  aa_list_t list;
  uint64_t used; /* tick of the last use */
} cslot_t;

struct aa_cache {
  cslot_t s[2][CACHE_SLOTS];
  uint64_t tick;
  size_t hits;
};

size_t aa_cache_hits(const aa_cache_t *cache) {
  return cache ? cache->hits : 0;
}

aa_cache_t *aa_cache_new(void) {
  return calloc(1, sizeof(aa_cache_t));
}

static void cslot_clear(cslot_t *s) {
  free(s->text);
  aa_list_free(&s->list);
  memset(s, 0, sizeof *s);
}

void aa_cache_clear(aa_cache_t *cache) {
  if (!cache)
    return;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < CACHE_SLOTS; i++)
      cslot_clear(&cache->s[k][i]);
}

void aa_cache_free(aa_cache_t *cache) {
  aa_cache_clear(cache);
  free(cache);
}

static int cache_find(aa_cache_t *cache, int k, const char *text, size_t len) {
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

/* Move *list (parsed from text) into a slot other than `keep` (the one a
 * merge in progress borrows). Returns the slot, or -1 (out of memory:
 * *list stays the caller's). */
static int cache_put(aa_cache_t *cache, int k, const char *text, size_t len, aa_list_t *list,
                     int keep) {
  char *copy = malloc(len + 1);
  if (!copy)
    return -1;
  memcpy(copy, text, len);
  copy[len] = '\0';
  int victim = -1;
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (i != keep && (victim < 0 || cache->s[k][i].used < cache->s[k][victim].used))
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

/* ---- reading ------------------------------------------------------------------ */

static int bad_annotation(ctx_t *c, const char *why) {
  return block(c, AA_BLOCK_ANNOTATION,
               "annotation %s on the aws-auth ConfigMap is not a valid v2 value: %s; fix or "
               "remove it",
               AA_OWNERS_ANNOTATION, why);
}

/* "v2:" + base64 (standard alphabet, padded, nothing else) of 16-byte
 * records sorted by key hash, at least one, no key hash twice. */
static int read_v2(ctx_t *c, const char *text, size_t len) {
  const char *b64 = text + strlen(V2_PREFIX);
  size_t n = len - strlen(V2_PREFIX);
  char why[160];
  if (strlen(text) != len)
    return bad_annotation(c, "it contains a NUL character");
  if (n == 0)
    return bad_annotation(c, "it holds no records");
  if (n % 4)
    return bad_annotation(c, "its length is not a multiple of 4 (base64 with padding)");
  unsigned char *bytes = NULL;
  size_t nb = 0;
  int rc = ck_base64_decode(b64, &bytes, &nb);
  if (rc == CK_ENOMEM)
    return rc;
  if (rc)
    return bad_annotation(c, "not standard base64");
  char *again = ck_base64_encode(bytes, nb);
  if (!again) {
    free(bytes);
    return CK_ENOMEM;
  }
  bool canonical = strcmp(again, b64) == 0;
  free(again);
  if (!canonical) {
    free(bytes);
    return bad_annotation(c, "not canonical standard base64 (whitespace, or stray bits before the padding)");
  }
  if (nb % V2_REC) {
    free(bytes);
    snprintf(why, sizeof why, "%zu bytes of records, not a multiple of %d", nb, V2_REC);
    return bad_annotation(c, why);
  }
  size_t nrec = nb / V2_REC;
  rec_t *old = calloc(nrec, sizeof *old);
  if (!old) {
    free(bytes);
    return CK_ENOMEM;
  }
  for (size_t i = 0; i < nrec; i++) {
    const unsigned char *p = bytes + i * V2_REC;
    rec_t *r = &old[i];
    for (int j = 0; j < 8; j++)
      r->khash = r->khash << 8 | p[j];
    for (int j = 8; j < 13; j++)
      r->ohash = r->ohash << 8 | p[j];
    for (int j = 13; j < 16; j++)
      r->ehash = r->ehash << 8 | p[j];
    if (i && r->khash <= old[i - 1].khash) {
      snprintf(why, sizeof why,
               r->khash == old[i - 1].khash ? "records %zu and %zu have the same key hash"
                                            : "records %zu and %zu are not sorted by key hash",
               i - 1, i);
      free(old);
      free(bytes);
      return bad_annotation(c, why);
    }
  }
  if (!(c->old_text = strdup(text))) {
    free(old);
    free(bytes);
    return CK_ENOMEM;
  }
  c->fmt = 2;
  c->old = old;
  c->nold = nrec;
  c->old_bytes = bytes;
  c->old_nbytes = nb;
  return 0;
}

static int read_annotation(ctx_t *c, const json_t *base) {
  json_t *ann = json_object_get(json_object_get(json_object_get(base, "metadata"), "annotations"),
                                AA_OWNERS_ANNOTATION);
  c->fmt = 1;
  c->old_recs = json_object();
  if (!c->old_recs)
    return CK_ENOMEM;
  if (!ann)
    return 0;
  const char *text = json_string_value(ann);
  if (text && !strncmp(text, V2_PREFIX, strlen(V2_PREFIX)))
    return read_v2(c, text, json_string_length(ann));
  json_error_t je;
  json_t *recs = text ? json_loads(text, JSON_REJECT_DUPLICATES, &je) : NULL;
  bool ok = json_is_object(recs);
  const char *key;
  json_t *v;
  json_object_foreach(recs, key, v) {
    if (!json_is_object(v) || !json_is_string(json_object_get(v, "owner")) ||
        !json_is_string(json_object_get(v, "hash")))
      ok = false;
  }
  if (!ok) {
    json_decref(recs);
    return block(c, AA_BLOCK_ANNOTATION,
                 "annotation %s on the aws-auth ConfigMap is not the JSON this operator writes; "
                 "fix or remove it",
                 AA_OWNERS_ANNOTATION);
  }
  json_decref(c->old_recs);
  c->old_recs = recs;
  c->nold = json_object_size(recs);
  if (!(c->old = calloc(c->nold + 1, sizeof *c->old)))
    return CK_ENOMEM;
  size_t i = 0;
  json_object_foreach(recs, key, v) {
    c->old[i] = (rec_t){.key = key, .v1 = v};
    if (ck_strmap_put(&c->old_by_key, key, &c->old[i], NULL))
      return CK_ENOMEM;
    i++;
  }
  return 0;
}

static int read_lists(ctx_t *c, const json_t *base) {
  const json_t *data = json_object_get(base, "data");
  char errs[1100] = "";
  for (int k = 0; k < 2; k++) {
    const json_t *v = json_object_get(data, aa_kind_key((aa_kind_t)k));
    const char *text = json_string_value(v);
    size_t len = json_string_length(v);
    aa_cache_t *cache = c->o->cache;
    int slot = cache && text ? cache_find(cache, k, text, len) : -1;
    int rc;
    if (slot >= 0) {
      c->live[k] = cache->s[k][slot].list; /* borrowed: not freed with the merge */
      rc = c->live[k].rc;
    } else {
      rc = aa_list_parse((aa_kind_t)k, text, len, &c->live[k]);
      if (cache && text && rc != CK_ENOMEM) {
        aa_list_t mine = c->live[k];
        if ((slot = cache_put(cache, k, text, len, &mine, -1)) >= 0)
          c->live[k] = cache->s[k][slot].list;
      }
    }
    c->live_slot[k] = slot;
    if (!rc && v && !json_is_string(v)) { /* not a ConfigMap we understand */
      c->live[k].present = true;
      c->live[k].rc = rc = CK_EINVAL;
      snprintf(c->live[k].error, sizeof c->live[k].error, "%s: not a string",
               aa_kind_key((aa_kind_t)k));
    }
    if (rc == CK_ENOMEM)
      return rc;
    if (rc) {
      size_t u = strlen(errs);
      snprintf(errs + u, sizeof errs - u, "%s%s", u ? "; " : "", c->live[k].error);
    }
    c->idx[k] = json_object();
    c->foreign[k] = calloc(c->live[k].n + 1, sizeof(bool));
    if (!c->idx[k] || !c->foreign[k])
      return CK_ENOMEM;
    for (size_t i = 0; i < c->live[k].n; i++) {
      aa_entry_t *e = &c->live[k].v[i];
      c->foreign[k][i] = true;
      if (!e->key)
        continue;
      json_t *a = json_object_get(c->idx[k], e->key);
      if (!a && (!(a = json_array()) || json_object_set_new(c->idx[k], e->key, a)))
        return CK_ENOMEM;
      if (json_array_append_new(a, json_integer((json_int_t)i)))
        return CK_ENOMEM;
    }
  }
  if (errs[0]) {
    if (!(c->r->parse_error = strdup(errs)))
      return CK_ENOMEM;
    return block(c, AA_BLOCK_UNPARSABLE, "live aws-auth data cannot be parsed, nothing written: %s",
                 errs);
  }
  return 0;
}

static int read_objects(ctx_t *c, const json_t *objects) {
  c->n = json_array_size(objects);
  c->r->nobjs = c->n;
  c->r->objs = calloc(c->n + 1, sizeof *c->r->objs);
  c->objs = calloc(c->n + 1, sizeof *c->objs);
  c->rank = calloc(c->n + 1, sizeof(obj_t *));
  c->ohix = calloc(2 * c->n + 1, sizeof *c->ohix);
  if (!c->r->objs || !c->objs || !c->rank || !c->ohix)
    return CK_ENOMEM;
  const char *fin = c->o->finalizer ? c->o->finalizer : AA_DEFAULT_FINALIZER;
  for (size_t i = 0; i < c->n; i++) {
    obj_t *o = &c->objs[i];
    o->st = &c->r->objs[i];
    const json_t *src = json_array_get(objects, i);
    if (aa_object_parse(src, fin, o->st, &o->desired))
      return CK_ENOMEM;
    const char *ts = json_string_value(
        json_object_get(json_object_get(src, "metadata"), "creationTimestamp"));
    if (!ts || ck_rfc3339_parse(ts, &o->created))
      o->created = INT64_MAX;
    size_t len = strlen(o->st->ns) + strlen(o->st->name) + 2;
    if (!(o->id = malloc(len)))
      return CK_ENOMEM;
    snprintf(o->id, len, "%s/%s", o->st->ns, o->st->name);
    c->rank[i] = o;
    obj_t *head = ck_strmap_get(&c->ids, o->id);
    if (head) {
      head->last_same->next_same = o;
      head->last_same = o;
    } else {
      o->last_same = o;
      if (ck_strmap_put(&c->ids, o->id, o, NULL))
        return CK_ENOMEM;
    }
  }
  qsort(c->rank, c->n, sizeof(obj_t *), cmp_rank);
  return 0;
}

static int merge_all(ctx_t *c) {
  json_t *claims = c->claims = json_object();
  if (!claims)
    return CK_ENOMEM;
  int rc = 0;
  for (size_t r = 0; r < c->n && !rc; r++) {
    obj_t *o = c->rank[r];
    if (!o->desired || o->st->deleting)
      continue;
    const char *arn_f = o->st->kind == AA_ROLES ? "rolearn" : "userarn";
    size_t i;
    json_t *e;
    json_array_foreach(o->desired, i, e) {
      char key[AA_MAX_ARN_LEN + 1];
      snprintf(key, sizeof key, "%s", json_string_value(json_object_get(e, arn_f)));
      for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
          *p = (char)(*p + 32);
      json_t *w = json_object_get(claims, key);
      if (w) {
        obj_t *win = c->rank[json_integer_value(w)];
        char msg[768];
        snprintf(msg, sizeof msg, "%s is also mapped by %s, which is older and wins", key,
                 win->id);
        o->st->conflicted = true;
        if (!o->st->conflict_msg && !(o->st->conflict_msg = strdup(msg)))
          rc = CK_ENOMEM;
        continue;
      }
      if (json_object_set_new(claims, key, json_integer((json_int_t)r))) {
        rc = CK_ENOMEM;
        break;
      }
      /* The key must outlive this loop: take it from the claims object. */
      const char *stable = NULL;
      void *it = json_object_iter_at(claims, key);
      stable = json_object_iter_key(it);
      if ((rc = merge_claim(c, o, e, stable)) != 0)
        break;
    }
  }
  /* Owned keys nobody claims, in sorted order for a stable drift/report;
   * then the v2 records whose key is unknown, by key hash. */
  const rec_t **keys = calloc(c->nold + 1, sizeof(const rec_t *));
  size_t nk = 0;
  if (!keys)
    return rc ? rc : CK_ENOMEM;
  for (size_t i = 0; i < c->nold; i++)
    if (c->old[i].key)
      keys[nk++] = &c->old[i];
  if (nk)
    qsort(keys, nk, sizeof(const rec_t *), cmp_rec_key);
  for (size_t i = 0; !rc && i < nk; i++)
    if (!json_object_get(claims, keys[i]->key))
      rc = merge_unclaimed(c, keys[i]->key, keys[i]);
  for (size_t i = 0; !rc && i < c->nold; i++)
    if (!c->old[i].key)
      rc = merge_unclaimed(c, NULL, &c->old[i]);
  free(keys);
  return rc;
}

/* Output arrays: foreign entries in live order, then owned ones by key. */
static int build_lists(ctx_t *c, json_t *out[2]) {
  if (c->nown)
    qsort(c->own, c->nown, sizeof *c->own, cmp_owned);
  for (int k = 0; k < 2; k++) {
    if (!(out[k] = json_array()))
      return CK_ENOMEM;
    for (size_t i = 0; i < c->live[k].n; i++) {
      if (!c->foreign[k][i])
        continue;
      c->r->foreign++;
      if (json_array_append(out[k], c->live[k].v[i].raw))
        return CK_ENOMEM;
    }
  }
  for (size_t i = 0; i < c->nown; i++) {
    c->r->owned += json_array_size(c->own[i].entries);
    if (json_array_extend(out[c->own[i].kind], c->own[i].entries))
      return CK_ENOMEM;
  }
  return 0;
}

/* ---- writing the annotation ------------------------------------------------- */

/* The new records as a v1 object. A carried v2 record whose key is
 * unknown cannot be written in v1: it is left out (nothing is live for it). */
static json_t *build_v1(ctx_t *c) {
  json_t *recs = json_object();
  for (size_t i = 0; recs && i < c->nnrec; i++) {
    const nrec_t *n = &c->nrec[i];
    const rec_t *old = n->carried;
    json_t *rec;
    if (!n->key)
      continue;
    if (old && old->v1) {
      rec = json_incref((json_t *)old->v1);
    } else if (old) {
      const obj_t *o = n->owner; /* its uid only if the record was written with it */
      rec = json_pack("{s:s,s:s,s:s}", "owner", o ? o->id : "", "uid",
                      o && old->ohash == o->oh_uid ? o->st->uid : "", "hash", n->hash);
    } else {
      rec = json_pack("{s:s,s:s,s:s}", "owner", n->owner->id, "uid", n->owner->st->uid, "hash",
                      n->hash);
    }
    if (!rec || json_object_set_new(recs, n->key, rec)) {
      json_decref(recs);
      return NULL;
    }
  }
  return recs;
}

static int cmp_v2rec(const void *a, const void *b) { return memcmp(a, b, V2_REC); }

static void put_be(unsigned char *p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char)(v & 0xff);
}

/* The new records as v2 bytes (sorted by key hash) and text. */
static int build_v2(ctx_t *c, unsigned char **bytes, size_t *nbytes, char **text) {
  *bytes = NULL;
  *text = NULL;
  ensure_ohash(c);
  unsigned char *b = malloc(c->nnrec * V2_REC + 1);
  if (!b)
    return CK_ENOMEM;
  for (size_t i = 0; i < c->nnrec; i++) {
    const nrec_t *n = &c->nrec[i];
    const rec_t *old = n->carried;
    unsigned char *p = b + i * V2_REC;
    if (old && !old->v1) {
      put_be(p, old->khash, 8);
      put_be(p + 8, old->ohash, 5);
      put_be(p + 13, old->ehash, 3);
    } else if (old) {
      const char *owner = json_string_value(json_object_get(old->v1, "owner"));
      const char *uid = json_string_value(json_object_get(old->v1, "uid"));
      put_be(p, key_hash(c, n->key), 8);
      put_be(p + 8, owner_hash(c, owner, uid ? uid : ""), 5);
      put_be(p + 13, n->ehash, 3);
    } else {
      long e = hex24(n->hash);
      put_be(p, key_hash(c, n->key), 8);
      put_be(p + 8, n->owner->oh_uid, 5);
      put_be(p + 13, e >= 0 ? (uint64_t)e : 0, 3);
    }
  }
  size_t nr = c->nnrec;
  if (nr)
    qsort(b, nr, V2_REC, cmp_v2rec);
  /* One record per key hash (two keys sharing 64 bits: keep the first). */
  size_t w = 0;
  for (size_t i = 0; i < nr; i++) {
    if (w && !memcmp(b + (w - 1) * V2_REC, b + i * V2_REC, 8))
      continue;
    if (w != i)
      memmove(b + w * V2_REC, b + i * V2_REC, V2_REC);
    w++;
  }
  char *enc = ck_base64_encode(b, w * V2_REC);
  size_t len = enc ? strlen(V2_PREFIX) + strlen(enc) + 1 : 0;
  char *t = enc ? malloc(len) : NULL;
  if (!t) {
    free(enc);
    free(b);
    return CK_ENOMEM;
  }
  snprintf(t, len, "%s%s", V2_PREFIX, enc);
  free(enc);
  *bytes = b;
  *nbytes = w * V2_REC;
  *text = t;
  return 0;
}

/* Bytes the API server counts against the 1 MiB limit. */
static size_t data_size(const json_t *base, const char *nv[2]) {
  size_t total = 0;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(base, "data"), k, v) {
    int which = !strcmp(k, "mapRoles") ? 0 : !strcmp(k, "mapUsers") ? 1 : -1;
    if (which < 0 || !nv[which])
      total += strlen(k) + json_string_length(v);
  }
  for (int i = 0; i < 2; i++)
    if (nv[i])
      total += strlen(aa_kind_key((aa_kind_t)i)) + strlen(nv[i]);
  json_object_foreach(json_object_get(base, "binaryData"), k, v) {
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    size_t pad = (n && s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
    total += strlen(k) + n / 4 * 3 - pad;
  }
  return total;
}

static size_t annotations_size_n(const json_t *base, size_t owners_len) {
  size_t total = strlen(AA_OWNERS_ANNOTATION) + owners_len;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(json_object_get(base, "metadata"), "annotations"), k, v) {
    if (strcmp(k, AA_OWNERS_ANNOTATION) != 0)
      total += strlen(k) + json_string_length(v);
  }
  return total;
}

static size_t annotations_size(const json_t *base, const char *owners) {
  return annotations_size_n(base, strlen(owners));
}

/* A lower bound of the v1 text's length: the braces, and every written
 * record at least "key":{"hash":"","owner":""} with a comma between two. */
static size_t v1_min_len(const ctx_t *c) {
  size_t n = 1;
  for (size_t i = 0; i < c->nnrec; i++)
    if (c->nrec[i].key)
      n += strlen(c->nrec[i].key) + 26;
  return n;
}

/* r->owners and r->annotation_changed for an unblocked result: v1 when
 * all annotations fit with it, else v2. *too_big: neither fits (sizes in
 * sz[0], sz[1]). */
static int write_annotation(ctx_t *c, const json_t *base, bool *too_big, size_t sz[2]) {
  aa_result_t *r = c->r;
  *too_big = false;
  char *t1 = NULL;
  /* Thousands of records: v1 cannot fit, do not build it. */
  if (annotations_size_n(base, v1_min_len(c)) <= AA_MAX_ANNOTATIONS_BYTES) {
    json_t *v1 = build_v1(c);
    t1 = v1 ? json_dumps(v1, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!t1) {
      json_decref(v1);
      return CK_ENOMEM;
    }
    sz[0] = annotations_size(base, t1);
    if (sz[0] <= AA_MAX_ANNOTATIONS_BYTES) {
      r->owners = t1;
      r->annotation_changed = c->fmt != 1 || !json_equal(v1, c->old_recs);
      json_decref(v1);
      return 0;
    }
    json_decref(v1);
  }
  unsigned char *bytes;
  size_t nb;
  char *t2;
  if (build_v2(c, &bytes, &nb, &t2)) {
    free(t1);
    return CK_ENOMEM;
  }
  sz[1] = annotations_size(base, t2);
  if (sz[1] <= AA_MAX_ANNOTATIONS_BYTES) {
    free(t1);
    r->owners = t2;
    c->out_v2 = true;
    r->annotation_changed =
        c->fmt != 2 || nb != c->old_nbytes || memcmp(bytes, c->old_bytes, nb) != 0;
    free(bytes);
    return 0;
  }
  free(t2);
  free(bytes);
  *too_big = true;
  if (!t1) { /* neither fits: the v1 text after all, for its size */
    json_t *v1 = build_v1(c);
    t1 = v1 ? json_dumps(v1, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(v1);
    if (!t1)
      return CK_ENOMEM;
    sz[0] = annotations_size(base, t1);
  }
  r->owners = t1;
  return 0;
}

static int finish(ctx_t *c, const json_t *base, const json_t *objects) {
  aa_result_t *r = c->r;
  int rc;
  if (!r->blocked && json_array_size(objects) == 0 && c->nold && !c->o->allow_orphan_removal)
    block(c, AA_BLOCK_NO_OBJECTS,
          "%zu owned entries in aws-auth but no AWSAuth object: refusing to remove them (an "
          "unsynced cache looks the same)",
          c->nold);
  if (!r->blocked && (rc = merge_all(c)) != 0)
    return rc;
  json_t *out[2] = {NULL, NULL};
  if (!r->blocked && (rc = build_lists(c, out)) != 0) {
    json_decref(out[0]);
    json_decref(out[1]);
    return rc;
  }
  int maxrm = c->o->max_removals == 0 ? AA_DEFAULT_MAX_REMOVALS : c->o->max_removals;
  if (!r->blocked && c->nodes_msg[0])
    block(c, AA_BLOCK_NODES, "%s", c->nodes_msg);
  if (!r->blocked && maxrm >= 0 && r->removed > (size_t)maxrm)
    block(c, AA_BLOCK_REMOVALS,
          "%zu owned entries would be removed in one write, more than the limit of %d; raise "
          "the limit to allow it",
          r->removed, maxrm);
  char *nv[2] = {NULL, NULL};
  for (int k = 0; !r->blocked && k < 2; k++) {
    /* Rewrite a key only when its meaning changes; an unchanged key keeps
     * its bytes (comments, layout). A key that empties is rewritten. */
    if (json_equal(out[k], c->live[k].doc))
      continue;
    if (!c->live[k].present && json_array_size(out[k]) == 0)
      continue;
    ck_error_t e = {0};
    aa_list_t back;
    rc = aa_emit_checked((aa_kind_t)k, out[k], &nv[k], c->o->cache ? &back : NULL, &e);
    /* What we write is the next merge's live text: keep its parse. */
    if (rc == 0 && c->o->cache &&
        cache_put(c->o->cache, k, nv[k], strlen(nv[k]), &back, c->live_slot[k]) < 0)
      aa_list_free(&back);
    if (rc == CK_ENOMEM) {
      json_decref(out[0]);
      json_decref(out[1]);
      return rc;
    }
    if (rc == CK_ETOOBIG)
      block(c, AA_BLOCK_TOO_BIG, "%s", e.message);
    else if (rc)
      block(c, AA_BLOCK_ROUNDTRIP, "%s", e.message);
  }
  json_decref(out[0]);
  json_decref(out[1]);
  bool ann_too_big = false;
  size_t asz[2] = {0, 0};
  if (r->blocked) { /* the annotation as found */
    r->owners = c->fmt == 2 ? strdup(c->old_text) : json_dumps(c->old_recs, JSON_COMPACT | JSON_SORT_KEYS);
    rc = r->owners ? 0 : CK_ENOMEM;
  } else {
    rc = write_annotation(c, base, &ann_too_big, asz);
  }
  if (rc) {
    free(nv[0]);
    free(nv[1]);
    return rc;
  }
  r->data_changed = nv[0] || nv[1];
  r->data_bytes = data_size(base, (const char **)nv);
  if (r->data_bytes > AA_MAX_DATA_BYTES)
    block(c, AA_BLOCK_TOO_BIG, "aws-auth data would be %zu bytes, over the 1 MiB limit",
          r->data_bytes);
  if (ann_too_big)
    block(c, AA_BLOCK_TOO_BIG,
          "aws-auth annotations would be %zu bytes with the ownership annotation as JSON (v1) "
          "and %zu bytes with its compact form (v2), over the 256 KiB limit",
          asz[0], asz[1]);
  else if (annotations_size(base, r->owners) > AA_MAX_ANNOTATIONS_BYTES)
    block(c, AA_BLOCK_TOO_BIG, "aws-auth annotations would be %zu bytes, over the 256 KiB limit",
          annotations_size(base, r->owners));
  if (r->blocked) {
    free(nv[0]);
    free(nv[1]);
    r->data_changed = r->annotation_changed = false;
  } else {
    r->map_roles = nv[0];
    r->map_users = nv[1];
  }
  r->write_needed = r->data_changed || r->annotation_changed ||
                    (r->recreate && base && !r->blocked); /* restore last_known */
  return 0;
}

/* ---- per-object results ------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x) {
  return n && bsearch(&x, v, n, sizeof *v, cmp_u64) != NULL;
}

/* entries, release_now and release_after_write. A record counts for the
 * objects of its owner's ns/name (v1: the name it holds; v2: the object
 * its owner hash matches). */
static int statuses(ctx_t *c) {
  ck_strmap_t cnt = {0}, old_names = {0};
  uint64_t *old_oh = NULL;
  size_t nold_oh = 0;
  int rc = 0;
  for (size_t i = 0; !rc && i < c->nnrec; i++) {
    const nrec_t *n = &c->nrec[i];
    if (!n->key && !c->out_v2)
      continue; /* not written */
    const char *name = n->carried && n->carried->v1
                           ? json_string_value(json_object_get(n->carried->v1, "owner"))
                           : n->owner ? n->owner->id : NULL;
    if (!name)
      continue;
    uintptr_t v = (uintptr_t)ck_strmap_get(&cnt, name);
    rc = ck_strmap_put(&cnt, name, (void *)(v + 1), NULL);
  }
  if (!rc && c->fmt == 2) {
    if (!(old_oh = malloc((c->nold + 1) * sizeof *old_oh)))
      rc = CK_ENOMEM;
    for (size_t i = 0; !rc && i < c->nold; i++)
      old_oh[nold_oh++] = c->old[i].ohash;
    if (!rc && nold_oh)
      qsort(old_oh, nold_oh, sizeof *old_oh, cmp_u64);
    ensure_ohash(c);
  } else {
    for (size_t i = 0; !rc && i < c->nold; i++)
      rc = ck_strmap_put(&old_names, json_string_value(json_object_get(c->old[i].v1, "owner")),
                         (void *)1, NULL);
  }
  for (size_t i = 0; !rc && i < c->n; i++) {
    obj_t *o = &c->objs[i];
    bool owned_before = c->fmt == 2 ? has_u64(old_oh, nold_oh, o->oh_uid) ||
                                          has_u64(old_oh, nold_oh, o->oh_any)
                                    : ck_strmap_get(&old_names, o->id) != NULL;
    size_t entries = (uintptr_t)ck_strmap_get(&cnt, o->id);
    /* An unreadable annotation says nothing about who owns what. */
    o->st->release_now = o->st->deleting && c->r->blocked != AA_BLOCK_ANNOTATION && !owned_before;
    o->st->release_after_write = o->st->deleting && !c->r->blocked && entries == 0;
    o->st->entries = entries;
  }
  free(old_oh);
  ck_strmap_free(&cnt);
  ck_strmap_free(&old_names);
  return rc;
}

int aa_reconcile(const json_t *live, const json_t *objects, const aa_opts_t *opts,
                 aa_result_t **out, ck_error_t *err) {
  static const aa_opts_t defaults = {0};
  *out = NULL;
  if ((live && !json_is_object(live)) || (objects && !json_is_array(objects)))
    return ck_error_set(err, CK_EINVAL, "aws-auth reconcile: live must be an object, objects an array");
  ctx_t c = {.o = opts ? opts : &defaults, .live_slot = {-1, -1}};
  c.r = calloc(1, sizeof *c.r);
  if (!c.r)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  c.r->drift = json_array();
  c.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  c.md = EVP_MD_CTX_new();
  const json_t *base = live ? live : c.o->last_known;
  c.r->recreate = live == NULL;
  int rc = c.r->drift && c.sha256 && c.md ? 0 : CK_ENOMEM;
  if (!rc)
    rc = read_objects(&c, objects);
  if (!rc)
    rc = read_lists(&c, base);
  if (!rc)
    rc = read_annotation(&c, base);
  if (!rc)
    rc = learn_live_keys(&c);
  if (!rc)
    rc = finish(&c, base, objects);
  if (!rc)
    rc = statuses(&c);
  for (size_t i = 0; i < c.n; i++) {
    free(c.objs[i].id);
    json_decref(c.objs[i].desired);
  }
  free(c.objs);
  free(c.rank);
  free(c.ohix);
  ck_strmap_free(&c.ids);
  for (int k = 0; k < 2; k++) {
    if (c.live_slot[k] < 0)
      aa_list_free(&c.live[k]);
    json_decref(c.idx[k]);
    free(c.foreign[k]);
  }
  for (size_t i = 0; i < c.nown; i++)
    json_decref(c.own[i].entries);
  free(c.own);
  json_decref(c.claims);
  json_decref(c.old_recs);
  free(c.old_text);
  free(c.old_bytes);
  free(c.old);
  ck_strmap_free(&c.old_by_key);
  free(c.nrec);
  EVP_MD_CTX_free(c.md);
  EVP_MD_free(c.sha256);
  if (rc) {
    aa_result_free(c.r);
    return ck_error_set(err, rc, "aws-auth reconcile: %s", ck_strerror(rc));
  }
  *out = c.r;
  return 0;
}

/* The ownership annotation of aws-auth: its records, the hashes they
 * hold, and reading and writing its two encodings (for merge.c).
 *
 * The ownership annotation has two encodings (see awsauth.h): v1, readable
 * JSON, written while it is short (AA_V1_MAX_BYTES) and fits in the
 * annotations' 256 KiB, and v2, 16-byte records in base64, written
 * otherwise. Both are
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
#include "merge_int.h"
#include "cache.h"

#include "util/base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hashes ----------------------------------------------------------------- */

/* The first 64 bits of SHA-256(a || b), big-endian. A failure (never seen
 * with a fetched digest and a live context) gives 0 and fails the whole
 * reconcile (hash_failed): a wrong hash could make an entry look owned. */
uint64_t ao_sha64(ctx_t *c, const void *a, size_t na, const void *b, size_t nb) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (!EVP_DigestInit_ex2(c->md, c->sha256, NULL) || !EVP_DigestUpdate(c->md, a, na) ||
      (nb && !EVP_DigestUpdate(c->md, b, nb)) || !EVP_DigestFinal_ex(c->md, d, &dl) || dl < 8) {
    c->hash_failed = true;
    return 0;
  }
  uint64_t h = 0;
  for (int i = 0; i < 8; i++)
    h = h << 8 | d[i];
  return h;
}

static uint64_t key_hash(ctx_t *c, const char *key) { return ao_sha64(c, key, strlen(key), NULL, 0); }

/* 40 bits of SHA-256 of ns "/" name "\0" uid. */
static uint64_t owner_hash(ctx_t *c, const char *id, const char *uid) {
  return ao_sha64(c, id, strlen(id) + 1, uid, strlen(uid)) >> 24;
}

/* The first 24 bits of a hex entry hash (6 lower-case hex digits), or -1. */
long ao_hex24(const char *h) {
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
bool ao_v1_hash_matches(const char *live, const char *rh) {
  if (!rh)
    return false;
  if (strcmp(live, rh) == 0)
    return true;
  return strlen(rh) == 6 && ao_hex24(rh) >= 0 && ao_hex24(rh) == ao_hex24(live);
}

bool ao_rec_hash_matches(const rec_t *rec, const char *live) {
  if (rec->v1)
    return ao_v1_hash_matches(live, json_string_value(json_object_get(rec->v1, "hash")));
  long h = ao_hex24(live);
  return h >= 0 && (uint32_t)h == rec->ehash;
}

static int cmp_ohix(const void *a, const void *b) {
  const ohix_t *x = a, *y = b;
  if (x->h != y->h)
    return x->h < y->h ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* Both owner hashes of every object, and the sorted index of them. */
void ao_ensure_ohash(ctx_t *c) {
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

aa_kind_t ao_key_kind(const char *key) { return strstr(key, ":user/") ? AA_USERS : AA_ROLES; }

int ao_cmp_rank(const void *a, const void *b) {
  const obj_t *x = *(obj_t *const *)a, *y = *(obj_t *const *)b;
  /* created: INT64_MAX when unknown, so it ranks as the newest */
  if (x->st->created != y->st->created)
    return x->st->created < y->st->created ? -1 : 1;
  return strcmp(x->id, y->id);
}

/* The object a record belongs to, the first in input order that matches:
 * v1 by ns/name, with the same uid unless either side has none (same name
 * but another uid: the owner was deleted and recreated); v2 by the owner
 * hash of its ns/name and uid, or of ns/name and "" (a record written for
 * an object without uid). */
obj_t *ao_find_owner(ctx_t *c, const rec_t *rec) {
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
  ao_ensure_ohash(c);
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

const char *ao_rec_owner_name(ctx_t *c, const rec_t *rec) {
  if (rec->v1)
    return json_string_value(json_object_get(rec->v1, "owner"));
  const obj_t *o = ao_find_owner(c, rec);
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
rec_t *ao_lookup_rec(ctx_t *c, const char *key) {
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
int ao_learn_live_keys(ctx_t *c) {
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

nrec_t *ao_nrec_add(ctx_t *c, const char *key, const rec_t *carried, const obj_t *owner) {
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


/* ---- reading ------------------------------------------------------------------ */

static int bad_annotation(ctx_t *c, const char *why) {
  return ao_block(c, AA_BLOCK_ANNOTATION,
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

int ao_read_annotation(ctx_t *c, const json_t *base) {
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
  aa_cache_t *cache = c->o->cache;
  json_t *recs = cache && text ? json_incref(aa_cache_annotation_get(cache, text, json_string_length(ann)))
                               : NULL;
  bool ok = recs != NULL; /* checked when it was kept */
  const char *key;
  json_t *v;
  if (!recs) {
    json_error_t je;
    recs = text ? json_loads(text, JSON_REJECT_DUPLICATES, &je) : NULL;
    ok = json_is_object(recs);
    json_object_foreach(recs, key, v) {
      if (!json_is_object(v) || !json_is_string(json_object_get(v, "owner")) ||
          !json_is_string(json_object_get(v, "hash")))
        ok = false;
    }
    if (ok && cache)
      aa_cache_annotation_put(cache, text, json_string_length(ann), recs);
  }
  if (!ok) {
    json_decref(recs);
    return ao_block(c, AA_BLOCK_ANNOTATION,
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
  ao_ensure_ohash(c);
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
      long e = ao_hex24(n->hash);
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
size_t ao_data_size(const json_t *base, const char *nv[2]) {
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

size_t ao_annotations_size(const json_t *base, const char *owners) {
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

/* r->owners and r->annotation_changed for an unblocked result: v1 when it
 * is at most AA_V1_MAX_BYTES and all annotations fit with it, else v2. *too_big: neither fits (sizes in
 * sz[0], sz[1]). */
int ao_write_annotation(ctx_t *c, const json_t *base, bool *too_big, size_t sz[2]) {
  aa_result_t *r = c->r;
  *too_big = false;
  char *t1 = NULL;
  bool t1_changed = false; /* t1 differs from the records read */
  /* Hundreds of records: v1 is too long, do not build it. */
  size_t min1 = v1_min_len(c);
  if (min1 <= AA_V1_MAX_BYTES && annotations_size_n(base, min1) <= AA_MAX_ANNOTATIONS_BYTES) {
    json_t *v1 = build_v1(c);
    t1 = v1 ? json_dumps(v1, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!t1) {
      json_decref(v1);
      return CK_ENOMEM;
    }
    sz[0] = ao_annotations_size(base, t1);
    if (strlen(t1) <= AA_V1_MAX_BYTES && sz[0] <= AA_MAX_ANNOTATIONS_BYTES) {
      r->owners = t1;
      r->annotation_changed = c->fmt != 1 || !json_equal(v1, c->old_recs);
      /* What the next merge reads, if this is written: keep it parsed. */
      if (c->o->cache && r->annotation_changed)
        aa_cache_annotation_put(c->o->cache, t1, strlen(t1), v1);
      json_decref(v1);
      return 0;
    }
    t1_changed = c->fmt != 1 || !json_equal(v1, c->old_recs);
    json_decref(v1);
  }
  unsigned char *bytes;
  size_t nb;
  char *t2;
  if (build_v2(c, &bytes, &nb, &t2)) {
    free(t1);
    return CK_ENOMEM;
  }
  sz[1] = ao_annotations_size(base, t2);
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
  if (t1 && sz[0] <= AA_MAX_ANNOTATIONS_BYTES) { /* v2 does not fit, a long v1 does */
    r->owners = t1;
    r->annotation_changed = t1_changed;
    return 0;
  }
  *too_big = true;
  if (!t1) { /* neither fits: the v1 text after all, for its size */
    json_t *v1 = build_v1(c);
    t1 = v1 ? json_dumps(v1, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(v1);
    if (!t1)
      return CK_ENOMEM;
    sz[0] = ao_annotations_size(base, t1);
  }
  r->owners = t1;
  return 0;
}

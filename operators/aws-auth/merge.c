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
 * The ownership annotation (reading, writing, hashes and record lookups)
 * is in owners.c; the shared types are in merge_int.h. */
#include "merge_int.h"
#include "cache.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ao_block(ctx_t *c, aa_block_t b, const char *fmt, ...) {
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
  nrec_t *n = ao_nrec_add(c, key, NULL, o);
  if (!n)
    return CK_ENOMEM;
  if (hash)
    memcpy(n->hash, hash, sizeof n->hash);
  else
    aa_cache_entry_hash(c->o->cache, o->st->kind, entry, n->hash);
  return 0;
}

/* Keep `rec` as found. When the annotation is written in the other
 * encoding, the record keeps what it says about the live entry: a hash
 * that matched it still matches, one that did not still does not. */
static int carry(ctx_t *c, const char *key, const rec_t *rec, aa_kind_t k, json_t *ix) {
  nrec_t *n = ao_nrec_add(c, key, rec, ao_find_owner(c, rec));
  if (!n)
    return CK_ENOMEM;
  char h[17] = "";
  long lh = -1;
  bool one = json_array_size(ix) == 1;
  if (one) {
    aa_cache_entry_hash(c->o->cache, k, live_raw(c, k, ix, 0), h);
    lh = ao_hex24(h);
  }
  if (rec->v1) { /* the 24 bits of a v2 record */
    const char *rh = json_string_value(json_object_get(rec->v1, "hash"));
    if (one && ao_v1_hash_matches(h, rh) && lh >= 0) {
      n->ehash = (uint32_t)lh;
    } else {
      long x = ao_hex24(rh);
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
  const char *owner = ao_rec_owner_name(c, rec);
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
  const rec_t *rec = ao_lookup_rec(c, key);
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
    aa_cache_entry_hash(c->o->cache, k, first, h);
  bool drifted = nlive != 1 || !ao_rec_hash_matches(rec, h);
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
    obj_t *prev = ao_find_owner(c, rec);
    if (!(prev && prev != o && prev->st->deleting && !prev->st->retain))
      nodes_violation(c, key, "rewritten without system:nodes");
  }
  return set_rec(c, key, o, want, same && h[0] != '-' ? h : NULL);
}

/* An owned key no object claims now. key NULL: a v2 record whose key is
 * unknown (nothing live has it). */
static int merge_unclaimed(ctx_t *c, const char *key, const rec_t *rec) {
  aa_kind_t k = key ? ao_key_kind(key) : AA_ROLES;
  json_t *ix = live_of(c, k, key);
  size_t nlive = json_array_size(ix);
  obj_t *o = ao_find_owner(c, rec);
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

static int read_lists(ctx_t *c, const json_t *base) {
  const json_t *data = json_object_get(base, "data");
  char errs[1100] = "";
  for (int k = 0; k < 2; k++) {
    const json_t *v = json_object_get(data, aa_kind_key((aa_kind_t)k));
    const char *text = json_string_value(v);
    size_t len = json_string_length(v);
    aa_cache_t *cache = c->o->cache;
    int slot = cache && text ? aa_cache_find(cache, (aa_kind_t)k, text, len) : -1;
    int rc;
    if (slot >= 0) {
      c->live[k] = *aa_cache_list(cache, (aa_kind_t)k, slot); /* borrowed, not freed here */
      rc = c->live[k].rc;
    } else {
      rc = aa_list_parse((aa_kind_t)k, text, len, &c->live[k]);
      if (cache && text && rc != CK_ENOMEM) {
        aa_list_t mine = c->live[k];
        if ((slot = aa_cache_put(cache, (aa_kind_t)k, text, len, &mine, -1)) >= 0)
          c->live[k] = *aa_cache_list(cache, (aa_kind_t)k, slot);
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
    return ao_block(c, AA_BLOCK_UNPARSABLE, "live aws-auth data cannot be parsed, nothing written: %s",
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
    aa_cache_t *cache = c->o->cache;
    int hit = cache ? aa_cache_object_get(cache, src, fin, o->st, &o->desired) : 0;
    if (hit < 0)
      return hit;
    if (!hit) {
      if (aa_is_stand_in(src))
        return AA_ESTANDIN; /* its parse is gone: nothing to read it from */
      if (aa_object_parse(src, fin, o->st, &o->desired))
        return CK_ENOMEM;
      if (cache)
        aa_cache_object_put(cache, src, fin, o->st, o->desired);
    }
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
  if (c->o->cache)
    aa_cache_object_sweep(c->o->cache);
  qsort(c->rank, c->n, sizeof(obj_t *), ao_cmp_rank);
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

static int finish(ctx_t *c, const json_t *base, const json_t *objects) {
  aa_result_t *r = c->r;
  int rc;
  if (!r->blocked && json_array_size(objects) == 0 && c->nold && !c->o->allow_orphan_removal)
    ao_block(c, AA_BLOCK_NO_OBJECTS,
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
    ao_block(c, AA_BLOCK_NODES, "%s", c->nodes_msg);
  if (!r->blocked && maxrm >= 0 && r->removed > (size_t)maxrm)
    ao_block(c, AA_BLOCK_REMOVALS,
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
    rc = aa_emit_checked((aa_kind_t)k, out[k], c->o->cache, &nv[k], c->o->cache ? &back : NULL, &e);
    /* What we write is the next merge's live text: keep its parse. */
    if (rc == 0 && c->o->cache &&
        aa_cache_put(c->o->cache, (aa_kind_t)k, nv[k], strlen(nv[k]), &back, c->live_slot[k]) < 0)
      aa_list_free(&back);
    if (rc == CK_ENOMEM) {
      json_decref(out[0]);
      json_decref(out[1]);
      return rc;
    }
    if (rc == CK_ETOOBIG)
      ao_block(c, AA_BLOCK_TOO_BIG, "%s", e.message);
    else if (rc)
      ao_block(c, AA_BLOCK_ROUNDTRIP, "%s", e.message);
  }
  json_decref(out[0]);
  json_decref(out[1]);
  bool ann_too_big = false;
  size_t asz[2] = {0, 0};
  if (r->blocked) { /* the annotation as found */
    r->owners = c->fmt == 2 ? strdup(c->old_text) : json_dumps(c->old_recs, JSON_COMPACT | JSON_SORT_KEYS);
    rc = r->owners ? 0 : CK_ENOMEM;
  } else {
    rc = ao_write_annotation(c, base, &ann_too_big, asz);
  }
  if (rc) {
    free(nv[0]);
    free(nv[1]);
    return rc;
  }
  r->data_changed = nv[0] || nv[1];
  r->data_bytes = ao_data_size(base, (const char **)nv);
  if (r->data_bytes > AA_MAX_DATA_BYTES)
    ao_block(c, AA_BLOCK_TOO_BIG, "aws-auth data would be %zu bytes, over the 1 MiB limit",
          r->data_bytes);
  if (ann_too_big)
    ao_block(c, AA_BLOCK_TOO_BIG,
          "aws-auth annotations would be %zu bytes with the ownership annotation as JSON (v1) "
          "and %zu bytes with its compact form (v2), over the 256 KiB limit",
          asz[0], asz[1]);
  else if (ao_annotations_size(base, r->owners) > AA_MAX_ANNOTATIONS_BYTES)
    ao_block(c, AA_BLOCK_TOO_BIG, "aws-auth annotations would be %zu bytes, over the 256 KiB limit",
          ao_annotations_size(base, r->owners));
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
    ao_ensure_ohash(c);
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
  c.sha256 = aa_sha256_md();
  c.md = EVP_MD_CTX_new();
  const json_t *base = live ? live : c.o->last_known;
  c.r->recreate = live == NULL;
  int rc = c.r->drift && c.sha256 && c.md ? 0 : CK_ENOMEM;
  if (!rc)
    rc = read_objects(&c, objects);
  if (!rc)
    rc = read_lists(&c, base);
  if (!rc)
    rc = ao_read_annotation(&c, base);
  if (!rc)
    rc = ao_learn_live_keys(&c);
  if (!rc)
    rc = finish(&c, base, objects);
  if (!rc)
    rc = statuses(&c);
  if (!rc && c.hash_failed)
    rc = CK_EIO;
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
  if (rc) {
    aa_result_free(c.r);
    if (rc == AA_ESTANDIN)
      return ck_error_set(err, AA_ESTANDIN, "aws-auth reconcile: an object is a stand-in whose "
                          "parse the cache no longer holds; take the snapshot again");
    if (c.hash_failed && rc == CK_EIO)
      return ck_error_set(err, rc, "aws-auth reconcile: SHA-256 failed in OpenSSL; nothing decided");
    return ck_error_set(err, rc, "aws-auth reconcile: %s", ck_strerror(rc));
  }
  *out = c.r;
  return 0;
}

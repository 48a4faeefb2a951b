/* The deterministic merge of AWSAuth objects into the live aws-auth data,
 * with the ownership annotation, drift handling and the safety interlocks.
 * Input order never matters: objects are ranked by age then name, owned
 * entries are sorted by key, foreign entries keep their live order. */
#include "awsauth.h"

#include "util/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct obj {
  aa_obj_status_t *st;
  json_t *desired; /* valid objects only */
  int64_t created; /* INT64_MAX when unknown: ranks as the newest */
  char *id;        /* "ns/name" */
} obj_t;

/* One key of the owned part of the output. */
typedef struct owned {
  const char *key; /* borrowed from a record key or a desired entry */
  aa_kind_t kind;
  json_t *entries; /* array; may be empty for a frozen key that vanished */
} owned_t;

typedef struct ctx {
  const aa_opts_t *o;
  aa_result_t *r;
  obj_t *objs;       /* input order */
  obj_t **rank;      /* oldest first */
  size_t n;
  aa_list_t live[2];
  json_t *idx[2];    /* key -> [index in live list] */
  bool *foreign[2];  /* per live entry: emitted in the foreign part */
  json_t *old_recs;  /* annotation as found */
  json_t *new_recs;
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

static aa_kind_t key_kind(const char *key) { return strstr(key, ":user/") ? AA_USERS : AA_ROLES; }

static int cmp_rank(const void *a, const void *b) {
  const obj_t *x = *(obj_t *const *)a, *y = *(obj_t *const *)b;
  if (x->created != y->created)
    return x->created < y->created ? -1 : 1;
  return strcmp(x->id, y->id);
}

static obj_t *find_owner(ctx_t *c, const json_t *rec) {
  const char *owner = json_string_value(json_object_get(rec, "owner"));
  const char *uid = json_string_value(json_object_get(rec, "uid"));
  if (!owner)
    return NULL;
  for (size_t i = 0; i < c->n; i++) {
    obj_t *o = &c->objs[i];
    /* Same name but another uid: the owner was deleted and recreated. */
    if (strcmp(o->id, owner) == 0 && (!uid || !uid[0] || !o->st->uid[0] || !strcmp(uid, o->st->uid)))
      return o;
  }
  return NULL;
}

static json_t *live_of(ctx_t *c, aa_kind_t k, const char *key) {
  return json_object_get(c->idx[k], key);
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

static int set_rec(ctx_t *c, const char *key, const obj_t *o, const json_t *entry) {
  char h[33];
  aa_entry_hash(entry, h);
  json_t *rec = json_pack("{s:s,s:s,s:s}", "owner", o->id, "uid", o->st->uid, "hash", h);
  return rec && !json_object_set_new(c->new_recs, key, rec) ? 0 : CK_ENOMEM;
}

static int drift_add(ctx_t *c, const char *key, aa_kind_t k, const json_t *rec, size_t nlive,
                     bool repair) {
  c->r->drifted++;
  if (repair)
    c->r->repaired++;
  const char *owner = json_string_value(json_object_get(rec, "owner"));
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
  json_t *rec = json_object_get(c->old_recs, key);
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
    return set_rec(c, key, o, want);
  }
  not_foreign(c, k, ix);
  if (!(ow = own_add(c, key, k)))
    return CK_ENOMEM;
  if (o->st->suspended) { /* frozen as found */
    return keep_live(c, ow, ix) ? CK_ENOMEM
                                : (json_object_set(c->new_recs, key, rec) ? CK_ENOMEM : 0);
  }
  char h[33] = "";
  if (nlive == 1)
    aa_entry_hash(c->live[k].v[json_integer_value(json_array_get(ix, 0))].raw, h);
  const json_t *first = nlive ? c->live[k].v[json_integer_value(json_array_get(ix, 0))].raw : NULL;
  const char *rh = json_string_value(json_object_get(rec, "hash"));
  bool drifted = nlive != 1 || !rh || strcmp(h, rh) != 0;
  if (drifted && nlive == 1 && json_equal((json_t *)first, (json_t *)want))
    drifted = false; /* someone already made it what we want */
  int rc;
  if (drifted && c->o->drift == AA_DRIFT_REPORT) {
    if ((rc = drift_add(c, key, k, rec, nlive, false)) || (rc = keep_live(c, ow, ix)))
      return rc;
    return json_object_set(c->new_recs, key, rec) ? CK_ENOMEM : 0;
  }
  if (drifted && (rc = drift_add(c, key, k, rec, nlive, true)))
    return rc;
  if (json_array_append(ow->entries, (json_t *)want))
    return CK_ENOMEM;
  if (!drifted && !json_equal((json_t *)first, (json_t *)want))
    c->r->updated++;
  if (had_nodes && !desired_nodes(want)) {
    /* Handing over from a deleted owner is the owner's deletion. */
    obj_t *prev = find_owner(c, rec);
    if (!(prev && prev != o && prev->st->deleting && !prev->st->retain))
      nodes_violation(c, key, "rewritten without system:nodes");
  }
  return set_rec(c, key, o, want);
}

/* An owned key no object claims now. */
static int merge_unclaimed(ctx_t *c, const char *key, json_t *rec) {
  aa_kind_t k = key_kind(key);
  json_t *ix = live_of(c, k, key);
  size_t nlive = json_array_size(ix);
  obj_t *o = find_owner(c, rec);
  if (o && o->st->deleting && o->st->retain)
    return 0; /* stays in place as a foreign entry; record dropped */
  not_foreign(c, k, ix);
  if (o && !o->st->deleting && (!o->st->valid || o->st->suspended)) {
    /* An invalid or suspended owner changes nothing: a typo in a spec must
     * not revoke access. */
    owned_t *ow = own_add(c, key, k);
    if (!ow || keep_live(c, ow, ix) || json_object_set(c->new_recs, key, rec))
      return CK_ENOMEM;
    return 0;
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

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int read_annotation(ctx_t *c, const json_t *base) {
  json_t *ann = json_object_get(json_object_get(json_object_get(base, "metadata"), "annotations"),
                                AA_OWNERS_ANNOTATION);
  c->new_recs = json_object();
  if (!c->new_recs)
    return CK_ENOMEM;
  if (!ann) {
    c->old_recs = json_object();
    return c->old_recs ? 0 : CK_ENOMEM;
  }
  const char *text = json_string_value(ann);
  json_error_t je;
  c->old_recs = text ? json_loads(text, JSON_REJECT_DUPLICATES, &je) : NULL;
  bool ok = json_is_object(c->old_recs);
  const char *key;
  json_t *v;
  json_object_foreach(c->old_recs, key, v) {
    if (!json_is_object(v) || !json_is_string(json_object_get(v, "owner")) ||
        !json_is_string(json_object_get(v, "hash")))
      ok = false;
  }
  if (!ok) {
    json_decref(c->old_recs);
    c->old_recs = json_object();
    return block(c, AA_BLOCK_ANNOTATION,
                 "annotation %s on the aws-auth ConfigMap is not the JSON this operator writes; "
                 "fix or remove it",
                 AA_OWNERS_ANNOTATION);
  }
  return 0;
}

static int read_lists(ctx_t *c, const json_t *base) {
  const json_t *data = json_object_get(base, "data");
  char errs[1100] = "";
  for (int k = 0; k < 2; k++) {
    const json_t *v = json_object_get(data, aa_kind_key((aa_kind_t)k));
    int rc = aa_list_parse((aa_kind_t)k, json_string_value(v), json_string_length(v), &c->live[k]);
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
  if (!c->r->objs || !c->objs || !c->rank)
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
  /* Owned keys nobody claims, in sorted order for a stable drift/report. */
  size_t nk = json_object_size(c->old_recs), j = 0;
  const char **keys = calloc(nk + 1, sizeof *keys);
  if (!keys)
    rc = CK_ENOMEM;
  const char *k;
  json_t *v;
  json_object_foreach(c->old_recs, k, v) {
    if (keys)
      keys[j++] = k;
  }
  if (keys)
    qsort(keys, nk, sizeof *keys, cmp_cstr);
  for (size_t i = 0; !rc && i < nk; i++)
    if (!json_object_get(claims, keys[i]))
      rc = merge_unclaimed(c, keys[i], json_object_get(c->old_recs, keys[i]));
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

static size_t annotations_size(const json_t *base, const char *owners) {
  size_t total = strlen(AA_OWNERS_ANNOTATION) + strlen(owners);
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(json_object_get(base, "metadata"), "annotations"), k, v) {
    if (strcmp(k, AA_OWNERS_ANNOTATION) != 0)
      total += strlen(k) + json_string_length(v);
  }
  return total;
}

static int finish(ctx_t *c, const json_t *base, const json_t *objects) {
  aa_result_t *r = c->r;
  int rc;
  size_t nrec = json_object_size(c->old_recs);
  if (!r->blocked && json_array_size(objects) == 0 && nrec && !c->o->allow_orphan_removal)
    block(c, AA_BLOCK_NO_OBJECTS,
          "%zu owned entries in aws-auth but no AWSAuth object: refusing to remove them (an "
          "unsynced cache looks the same)",
          nrec);
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
    rc = aa_emit_checked((aa_kind_t)k, out[k], &nv[k], &e);
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
  r->owners = json_dumps(r->blocked ? c->old_recs : c->new_recs, JSON_COMPACT | JSON_SORT_KEYS);
  if (!r->owners) {
    free(nv[0]);
    free(nv[1]);
    return CK_ENOMEM;
  }
  r->annotation_changed = !json_equal(c->new_recs, c->old_recs);
  r->data_changed = nv[0] || nv[1];
  r->data_bytes = data_size(base, (const char **)nv);
  if (r->data_bytes > AA_MAX_DATA_BYTES)
    block(c, AA_BLOCK_TOO_BIG, "aws-auth data would be %zu bytes, over the 1 MiB limit",
          r->data_bytes);
  size_t ab = annotations_size(base, r->owners);
  if (ab > AA_MAX_ANNOTATIONS_BYTES)
    block(c, AA_BLOCK_TOO_BIG, "aws-auth annotations would be %zu bytes, over the 256 KiB limit",
          ab);
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

static bool owns_any(const json_t *recs, const char *id) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)recs, k, v) {
    if (!strcmp(json_string_value(json_object_get(v, "owner")), id))
      return true;
  }
  return false;
}

int aa_reconcile(const json_t *live, const json_t *objects, const aa_opts_t *opts,
                 aa_result_t **out, ck_error_t *err) {
  static const aa_opts_t defaults = {0};
  *out = NULL;
  if ((live && !json_is_object(live)) || (objects && !json_is_array(objects)))
    return ck_error_set(err, CK_EINVAL, "aws-auth reconcile: live must be an object, objects an array");
  ctx_t c = {.o = opts ? opts : &defaults};
  c.r = calloc(1, sizeof *c.r);
  if (!c.r)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  c.r->drift = json_array();
  const json_t *base = live ? live : c.o->last_known;
  c.r->recreate = live == NULL;
  int rc = c.r->drift ? 0 : CK_ENOMEM;
  if (!rc)
    rc = read_objects(&c, objects);
  if (!rc)
    rc = read_lists(&c, base);
  if (!rc)
    rc = read_annotation(&c, base);
  if (!rc)
    rc = finish(&c, base, objects);
  for (size_t i = 0; !rc && i < c.n; i++) {
    obj_t *o = &c.objs[i];
    /* An unreadable annotation says nothing about who owns what. */
    o->st->release_now = o->st->deleting && c.r->blocked != AA_BLOCK_ANNOTATION &&
                         !owns_any(c.old_recs, o->id);
    o->st->release_after_write =
        o->st->deleting && !c.r->blocked && !owns_any(c.new_recs, o->id);
    const char *k;
    json_t *v;
    json_object_foreach(c.new_recs, k, v) {
      if (!strcmp(json_string_value(json_object_get(v, "owner")), o->id))
        o->st->entries++;
    }
  }
  for (size_t i = 0; i < c.n; i++) {
    free(c.objs[i].id);
    json_decref(c.objs[i].desired);
  }
  free(c.objs);
  free(c.rank);
  for (int k = 0; k < 2; k++) {
    aa_list_free(&c.live[k]);
    json_decref(c.idx[k]);
    free(c.foreign[k]);
  }
  for (size_t i = 0; i < c.nown; i++)
    json_decref(c.own[i].entries);
  free(c.own);
  json_decref(c.claims);
  json_decref(c.old_recs);
  json_decref(c.new_recs);
  if (rc) {
    aa_result_free(c.r);
    return ck_error_set(err, rc, "aws-auth reconcile: %s", ck_strerror(rc));
  }
  *out = c.r;
  return 0;
}


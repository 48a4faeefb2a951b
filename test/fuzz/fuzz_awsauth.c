/* aws-auth core: arbitrary live data -> parse -> emit -> parse back must
 * give the identical JSON (or the emitter refuses); then a whole reconcile
 * over the same data must not crash or leak, and what it would write must
 * parse back to what it intends.
 *
 * Input: the mapRoles text, optionally followed by a NUL and the
 * ownership annotation part:
 *   byte 0: flags for the objects (see F_*);
 *   then, without F_RECORDS: the annotation text as is (v1 JSON, "v2:..."
 *   or anything else);
 *   with F_RECORDS: material for a valid-looking v2 value whose records
 *   name the live keys, the objects and their entries (so the fuzzer gets
 *   past SHA-256), 4 bytes per key, then raw 16-byte records.
 * What the reconcile writes is reconciled again: its own annotation must
 * read back, and a second pass must not want to write again, except once
 * when a record carried from v2 fits as v1 (then the third pass is quiet). */
#include "awsauth.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
  F_SUSPEND = 1,   /* object a: spec.suspend */
  F_INVALID = 2,   /* object a: a wildcard ARN */
  F_DELETING = 4,  /* object a: deletionTimestamp */
  F_RETAIN = 8,    /* object a: deletionPolicy Retain */
  F_PAD = 16,      /* another annotation leaves 80 bytes: v2 is written */
  F_REPORT = 32,   /* --drift=report */
  F_RECORDS = 64,  /* build the v2 records (see above) */
  F_SECOND = 128,  /* object b too */
};

#define IAM "arn:aws:iam::111122223333:"

static void roundtrip(aa_kind_t kind, const char *data, size_t size) {
  aa_list_t l;
  if (aa_list_parse(kind, data, size, &l) == 0) {
    char *text = NULL;
    if (aa_emit_list(l.doc, &text) == 0) {
      aa_list_t back;
      if (aa_list_parse(kind, text, strlen(text), &back) != 0 && strlen(text) <= AA_MAX_DATA_BYTES)
        __builtin_trap(); /* our own output must parse */
      if (back.rc == 0 && !json_equal(back.doc, l.doc))
        __builtin_trap(); /* and mean the same */
      aa_list_free(&back);
      /* Checked entry by entry with a cache: the same text, every entry
       * parsed back the first time, found the second. */
      aa_cache_t *cache = aa_cache_new();
      for (int pass = 0; cache && pass < 2 && strlen(text) <= AA_MAX_DATA_BYTES; pass++) {
        char *t2 = NULL;
        ck_error_t err = {0};
        int rc = aa_emit_checked(kind, l.doc, cache, &t2, &back, &err);
        if (rc == CK_ENOMEM)
          break;
        if (rc != 0 || strcmp(t2, text) != 0 || !json_equal(back.doc, l.doc))
          __builtin_trap();
        aa_list_free(&back);
        free(t2);
      }
      aa_cache_free(cache);
      free(text);
    }
  }
  aa_list_free(&l);
}

static void sha(const void *a, size_t na, const void *b, size_t nb, unsigned char out[32]) {
  unsigned int l = 0;
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  if (!m || !EVP_DigestInit_ex(m, EVP_sha256(), NULL) || !EVP_DigestUpdate(m, a, na) ||
      !EVP_DigestUpdate(m, b, nb) || !EVP_DigestFinal_ex(m, out, &l))
    memset(out, 0, 32);
  EVP_MD_CTX_free(m);
}

static int cmp16(const void *a, const void *b) { return memcmp(a, b, 16); }

/* A v2 value from the input: for each key (the live ones, then the two
 * the objects map), 4 bytes: b0 bit 0 = no record, bits 1-2 = owner (a
 * with uid, a without uid, b, or raw), bit 3 = the live entry's real hash;
 * b1..b3 = owner/entry hash bytes. Then raw records. */
static char *make_v2(const aa_list_t *live, const uint8_t *in, size_t n) {
  size_t nkeys = live->n + 2, cap = nkeys + n / 16 + 1, nrec = 0;
  unsigned char *recs = calloc(cap, 16);
  if (!recs)
    return NULL;
  for (size_t i = 0; i < nkeys && n >= 4; i++, in += 4, n -= 4) {
    const char *key = i < live->n ? live->v[i].key : i == live->n ? IAM "role/admin" : IAM "role/b";
    if (!key || (in[0] & 1))
      continue;
    unsigned char d[32], *p = recs + 16 * nrec++;
    sha(key, strlen(key), "", 0, d);
    memcpy(p, d, 8);
    static const char *const owners[][2] = {{"kube-system/a", "u"}, {"kube-system/a", ""},
                                             {"kube-system/b", "ub"}};
    int w = (in[0] >> 1) & 3;
    if (w < 3) {
      sha(owners[w][0], strlen(owners[w][0]) + 1, owners[w][1], strlen(owners[w][1]), d);
      memcpy(p + 8, d, 5);
    } else {
      memcpy(p + 8, in + 1, 3);
      memcpy(p + 11, in + 1, 2);
    }
    if ((in[0] & 8) && i < live->n) {
      char h[17];
      aa_entry_hash(live->v[i].raw, h);
      for (int j = 0; j < 3; j++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
          char c = h[2 * j + k];
          v = v * 16 + (unsigned)(c >= 'a' ? c - 'a' + 10 : c >= '0' && c <= '9' ? c - '0' : 0);
        }
        p[13 + j] = (unsigned char)v;
      }
    } else {
      memcpy(p + 13, in + 1, 3);
    }
  }
  for (; n >= 16 && nrec < cap; in += 16, n -= 16)
    memcpy(recs + 16 * nrec++, in, 16);
  qsort(recs, nrec, 16, cmp16);
  size_t w = 0; /* one record per key hash */
  for (size_t i = 0; i < nrec; i++) {
    if (w && !memcmp(recs + 16 * (w - 1), recs + 16 * i, 8))
      continue;
    memmove(recs + 16 * w++, recs + 16 * i, 16);
  }
  char *t = malloc(3 + (w * 16 + 2) / 3 * 4 + 1);
  if (t) {
    memcpy(t, "v2:", 3);
    EVP_EncodeBlock((unsigned char *)t + 3, recs, (int)(w * 16));
  }
  free(recs);
  return t;
}

static json_t *object(const char *name, const char *uid, const char *ts, const char *arn,
                      unsigned flags) {
  json_t *md = json_pack("{s:s,s:s,s:s,s:s}", "namespace", "kube-system", "name", name, "uid", uid,
                         "creationTimestamp", ts);
  if (md && (flags & F_DELETING))
    json_object_set_new(md, "deletionTimestamp", json_string("2030-01-01T00:00:00Z"));
  json_t *o = json_pack("{s:o*,s:{s:b,s:b,s:s,s:[{s:s,s:s,s:[s]}]}}", "metadata", md, "spec",
                        "takeOver", 1, "suspend", (flags & F_SUSPEND) != 0, "deletionPolicy",
                        (flags & F_RETAIN) ? "Retain" : "Delete", "mapRoles", "rolearn",
                        (flags & F_INVALID) ? IAM "role/ad*min" : arn, "username", name, "groups",
                        "system:masters");
  return o;
}

static void pad(json_t *live) {
  size_t n = AA_MAX_ANNOTATIONS_BYTES - strlen("pad") - strlen(AA_OWNERS_ANNOTATION) - 80;
  char *p = malloc(n + 1);
  json_t *ann = json_object_get(json_object_get(live, "metadata"), "annotations");
  if (p && ann) {
    memset(p, 'p', n);
    p[n] = '\0';
    json_object_set_new(ann, "pad", json_string(p));
  }
  free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  const uint8_t *nul = memchr(data, 0, size);
  size_t nroles = nul ? (size_t)(nul - data) : size;
  roundtrip(AA_ROLES, d, nroles);
  roundtrip(AA_USERS, d, nroles);

  unsigned flags = nul && nul + 1 < data + size ? nul[1] : 0;
  const uint8_t *ann = nul && nul + 1 < data + size ? nul + 2 : NULL;
  size_t nann = ann ? size - (size_t)(ann - data) : 0;

  json_t *s = json_stringn(d, nroles); /* NULL for invalid UTF-8: key absent */
  json_t *live = json_pack("{s:{s:{}},s:{s:o*}}", "metadata", "annotations", "data", "mapRoles", s);
  json_t *objs = json_array();
  if (!live || !objs)
    goto out;
  json_array_append_new(objs, object("a", "u", "2024-01-01T00:00:00Z", IAM "role/admin", flags));
  if (flags & F_SECOND)
    json_array_append_new(objs, object("b", "ub", "2024-02-01T00:00:00Z", IAM "role/b", 0));
  if (ann) {
    json_t *text = NULL;
    if (flags & F_RECORDS) {
      aa_list_t l;
      aa_list_parse(AA_ROLES, json_string_value(s), json_string_length(s), &l);
      char *v2 = make_v2(&l, ann, nann);
      aa_list_free(&l);
      text = v2 ? json_string(v2) : NULL;
      free(v2);
    } else {
      text = json_stringn((const char *)ann, nann); /* NULs inside are kept */
    }
    if (text)
      json_object_set_new(json_object_get(live, "metadata"), "annotations",
                          json_pack("{s:o}", AA_OWNERS_ANNOTATION, text));
  }
  if (flags & F_PAD)
    pad(live);
  aa_opts_t o = {.drift = (flags & F_REPORT) ? AA_DRIFT_REPORT : AA_DRIFT_REPAIR,
                 .max_removals = -1};
  aa_result_t *r = NULL;
  if (aa_reconcile(live, objs, &o, &r, NULL) != 0)
    goto out;
  if (r->map_roles) {
    aa_list_t back;
    if (aa_list_parse(AA_ROLES, r->map_roles, strlen(r->map_roles), &back) != 0)
      __builtin_trap();
    aa_list_free(&back);
  }
  if (!r->blocked && r->owners[0] != '{' && strncmp(r->owners, "v2:", 3) != 0)
    __builtin_trap(); /* v1 or v2, nothing else */
  json_t *cm = NULL;
  if (!r->blocked && aa_apply(live, NULL, r, &cm, NULL) == 0) {
    aa_result_t *r2 = NULL;
    if (aa_reconcile(cm, objs, &o, &r2, NULL) == 0) {
      if (r2->blocked == AA_BLOCK_ANNOTATION || r2->blocked == AA_BLOCK_UNPARSABLE)
        __builtin_trap(); /* what we wrote must read back */
      json_t *cm2 = NULL;
      if (!r2->blocked && r2->write_needed && aa_apply(cm, NULL, r2, &cm2, NULL) == 0) {
        /* A second write happens only when a carried record, converted
         * from v2, fits as v1 again; after it nothing changes. */
        if (strncmp(r->owners, "v2:", 3) != 0 || r2->data_changed)
          __builtin_trap();
        aa_result_t *r3 = NULL;
        if (aa_reconcile(cm2, objs, &o, &r3, NULL) == 0) {
          if (r3->blocked || r3->write_needed)
            __builtin_trap();
          aa_result_free(r3);
        }
        json_decref(cm2);
      }
      aa_result_free(r2);
    }
    json_decref(cm);
  }
  aa_result_free(r);
out:
  json_decref(live);
  json_decref(objs);
  return 0;
}

/* Private to the aws-auth core: the merge's working state, shared by
 * merge.c (the merge) and owners.c (the ownership annotation). */
#ifndef AA_MERGE_INT_H
#define AA_MERGE_INT_H
#include "awsauth.h"

#include "util/strmap.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define V2_PREFIX "v2:"
#define V2_REC 16 /* bytes per v2 record: 8 key hash, 5 owner hash, 3 entry hash */

typedef struct obj {
  aa_obj_status_t *st;
  json_t *desired; /* valid objects only */
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
  const EVP_MD *sha256; /* aa_sha256_md(): borrowed */
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
  bool hash_failed;  /* sha64 failed: the result cannot be trusted */
} ctx_t;

/* ---- merge.c -------------------------------------------------------------- */

/* Block the result with reason b (the first reason wins). 0 or CK_ENOMEM. */
int ao_block(ctx_t *c, aa_block_t b, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- owners.c: hashes ----------------------------------------------------- */

/* The first 64 bits of SHA-256(a || b); on failure 0 and c->hash_failed. */
uint64_t ao_sha64(ctx_t *c, const void *a, size_t na, const void *b, size_t nb);
/* The first 24 bits of a hex entry hash, or -1. */
long ao_hex24(const char *h);
/* Whether a v1 record hash (16 or 6 hex digits) matches a live entry's. */
bool ao_v1_hash_matches(const char *live, const char *rh);
/* Whether a record's entry hash (v1 or v2) matches a live entry's. */
bool ao_rec_hash_matches(const rec_t *rec, const char *live);
/* Fill the objects' owner hashes and the sorted index of them (once). */
void ao_ensure_ohash(ctx_t *c);

/* ---- owners.c: records ---------------------------------------------------- */

/* The list an owned key belongs to (":user/" in the ARN: mapUsers). */
aa_kind_t ao_key_kind(const char *key);
/* qsort order of objects: oldest first, then by id. */
int ao_cmp_rank(const void *a, const void *b);
/* The object that owns rec, or NULL (gone). */
obj_t *ao_find_owner(ctx_t *c, const rec_t *rec);
/* "ns/name" of rec's owner as recorded (v1), or a placeholder (v2). */
const char *ao_rec_owner_name(ctx_t *c, const rec_t *rec);
/* The record of key, or NULL. */
rec_t *ao_lookup_rec(ctx_t *c, const char *key);
/* Match v2 records to the keys of the live entries. 0 or CK_ENOMEM. */
int ao_learn_live_keys(ctx_t *c);
/* Add a record to write. NULL when out of memory. */
nrec_t *ao_nrec_add(ctx_t *c, const char *key, const rec_t *carried, const obj_t *owner);

/* ---- owners.c: the annotation --------------------------------------------- */

/* Read the annotation of base into c->old (blocks the result when it is
 * unreadable). 0 or CK_ENOMEM. */
int ao_read_annotation(ctx_t *c, const json_t *base);
/* Build the annotation to write into c->r->owners (v1 when it fits, else
 * v2; *too_big when neither does, with both sizes in sz). */
int ao_write_annotation(ctx_t *c, const json_t *base, bool *too_big, size_t sz[2]);
/* Bytes of data + binaryData with the new lists nv (NULL: unchanged). */
size_t ao_data_size(const json_t *base, const char *nv[2]);
/* Bytes of the annotations with the ownership annotation set to owners. */
size_t ao_annotations_size(const json_t *base, const char *owners);

#endif

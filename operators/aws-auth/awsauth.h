/* The pure core of the aws-auth operator (private to operators/aws-auth).
 *
 * Nothing here does I/O, takes locks or keeps global state: every call is a
 * function of its arguments, so a reconcile can call it from any worker and
 * a unit test can drive it with tables. The caller (the reconciler) reads
 * the cached ConfigMap and AWSAuth objects, calls aa_reconcile(), and then
 * writes what the result says (aa_apply() builds the object to PUT).
 *
 * Vocabulary
 *  - list: one of the two data keys this operator writes, mapRoles and
 *    mapUsers. mapAccounts and every other key are never touched.
 *  - key: the identity of an entry: its ARN lower-cased (roles are matched
 *    lower-cased by aws-iam-authenticator; for users we lower-case too, so
 *    two entries differing only in case, which the authenticator resolves
 *    at random, count as a conflict).
 *  - owned entry: one this operator wrote, recorded in the ConfigMap
 *    annotation AA_OWNERS_ANNOTATION. Everything else is foreign and is
 *    kept exactly (same JSON after YAML 1.1 decoding, same order).
 *
 * The ownership annotation has two encodings; the reader accepts both.
 *  v1, readable, written when its text is at most AA_V1_MAX_BYTES and all
 *  the ConfigMap's annotations fit in AA_MAX_ANNOTATIONS_BYTES with it:
 *  compact JSON with sorted keys,
 *   {"arn:aws:iam::111122223333:role/admin":
 *      {"hash":"<16 hex>","owner":"kube-system/admins","uid":"<uid>"}, ...}
 *  "hash" is the first 64 bits of SHA-256 over the entry as written
 *  (canonical JSON, aa_entry_hash), so an edit by someone else (drift) is
 *  visible after a restart. About 150 bytes a record: ~200 records.
 *  v2, compact, written otherwise: "v2:" then standard
 *  base64 (padded) of 16-byte records sorted by key hash, no key hash
 *  twice, at least one record:
 *    8 bytes  first 8 bytes of SHA-256 of the key (the lower-cased ARN);
 *    5 bytes  first 5 bytes of SHA-256 of ns "/" name "\0" uid (uid "" when
 *             unknown): the owner;
 *    3 bytes  the first 24 bits of the entry hash.
 *  21.3 bytes a record: ~12,000 fit (10,000 take ~213 KB); the 1 MiB data
 *  limit usually comes first. A v2 record's key is known only through a
 *  live entry or a claim with that key hash; one with neither is dropped
 *  (nothing live is left for it). Why 64/40/24 bits are enough: owners.c.
 *  When neither encoding fits: AA_BLOCK_TOO_BIG; an annotation that is
 *  neither valid v1 nor valid v2: AA_BLOCK_ANNOTATION.
 * Never an ownerReference: garbage collection of aws-auth would lock
 * everyone out.
 *
 * Thread safety: all functions are reentrant; results are plain values.
 */
#ifndef AA_AWSAUTH_H
#define AA_AWSAUTH_H

#include "crdkit/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AA_OWNERS_ANNOTATION "crdkit.io/aws-auth-owners"
#define AA_DEFAULT_FINALIZER "crdkit.io/aws-auth"
#define AA_DEFAULT_MAX_REMOVALS 10

/* Bounds of one AWSAuth spec (the CRD's maxLength/maxItems must not be
 * larger, or valid-looking objects get marked Invalid). */
#define AA_MAX_ARN_LEN 2048
#define AA_MAX_NAME_LEN 256  /* username and each group, bytes */
#define AA_MAX_GROUPS 64     /* groups per entry */
#define AA_MAX_ENTRIES 1000  /* entries per AWSAuth */
/* Bounds of the live data we parse (hostile input). */
#define AA_MAX_DATA_BYTES ((size_t)1024 * 1024) /* a ConfigMap's data limit */
#define AA_MAX_ANNOTATIONS_BYTES ((size_t)256 * 1024)
/* The readable (v1) ownership annotation is written while its text is at
 * most this long (about 200 records); past that, the compact v2. A v1
 * record (~140 bytes) is bigger than the entry it describes (~100), and
 * every write, etcd revision and watch event of aws-auth carries it: at
 * 1,000 entries v1 made a write 2.4 times the size of its entries. */
#define AA_V1_MAX_BYTES ((size_t)32 * 1024)
#define AA_PARSE_MAX_NODES 200000 /* counts alias expansions */
#define AA_PARSE_MAX_DEPTH 32

typedef enum aa_kind {
  AA_ROLES = 0, /* data.mapRoles, entries keyed by "rolearn" */
  AA_USERS = 1, /* data.mapUsers, entries keyed by "userarn" */
} aa_kind_t;

/* "mapRoles" / "mapUsers". Static storage. */
const char *aa_kind_key(aa_kind_t k);

/* ---- ARN and name validation (arn.c) ------------------------------------ */

/* Decode one UTF-8 sequence of s (n > 0 bytes left) into *cp; returns its
 * length, or 0 when malformed (overlong, surrogate, past U+10FFFF). */
size_t aa_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Normalise an ARN given under `kind` (AA_ROLES: spec.mapRoles[].rolearn).
 * Roles: the path is stripped (the authenticator compares against the
 * caller's canonical ARN, which has none), and an STS assumed-role ARN
 * arn:P:sts::A:assumed-role/N/S becomes arn:P:iam::A:role/N; both add a
 * warning. Service-linked roles (role/aws-service-role/...) are accepted
 * with the path stripped and a warning: EMR on EKS and others need them.
 * Users: kept as written (user paths are part of the caller identity).
 * Rejected (CK_EINVAL, `why` says what): no lower-case "arn:" prefix,
 * partition outside aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e,
 * aws-iso-f, aws-eusc; service other than iam (sts only for assumed-role);
 * a region; account not 12 digits; whitespace, control or non-ASCII
 * characters; wildcards; names over 64 characters or with characters IAM
 * forbids; :root; a user ARN under mapRoles and the reverse.
 * On success *norm is malloc'd (caller frees) and `warn` (size nwarn,
 * may be NULL) holds a warning or "". `why` receives the reason on error. */
int aa_arn_normalize(aa_kind_t kind, const char *arn, char **norm, char *warn, size_t nwarn,
                     char *why, size_t nwhy);

/* Validate a username (is_group false) or a group name. Rejects empty
 * values, over AA_MAX_NAME_LEN, invalid UTF-8, NUL/C0/C1 controls, line and
 * paragraph separators, bidi overrides, zero-width characters, leading or
 * trailing spaces, and non-ASCII look-alikes of reserved prefixes
 * (system:, eks:, kubeadm:). Templates {{EC2PrivateDNSName}}, {{AccountID}},
 * {{SessionName}}, {{SessionNameRaw}}, {{AccessKeyID}} are accepted; in a
 * group the caller-chosen ones ({{SessionName*}}, {{AccessKeyID}}) are
 * rejected (the caller would pick its own group). Unknown or malformed
 * placeholders stay literal: accepted with a warning, as is a username that
 * is only {{SessionName}}. Returns 0 or CK_EINVAL (`why` filled). */
int aa_name_check(const char *s, size_t len, bool is_group, char *warn, size_t nwarn, char *why,
                  size_t nwhy);

/* ---- Live data (parse.c) ------------------------------------------------ */

/* One entry of a live list, with what the authenticator takes from it
 * (encoding/json semantics: field names match case-insensitively, the
 * last matching name in sorted order wins, wrong types are ignored). */
typedef struct aa_entry {
  json_t *raw;    /* the entry as decoded (any JSON type); owned reference */
  char *arn;      /* effective rolearn/userarn; NULL: the authenticator drops it */
  char *key;      /* lower-cased arn, NULL with arn */
  char *username; /* NULL when absent */
  bool nodes;     /* its groups contain "system:nodes" */
} aa_entry_t;

typedef struct aa_list {
  aa_kind_t kind;
  bool present;   /* the data key exists */
  json_t *doc;    /* decoded list (array, owned); empty array when absent */
  aa_entry_t *v;  /* one per element of doc, same order */
  size_t n;
  int rc;         /* 0, or why the whole key is unusable (then n == 0) */
  char error[512];/* "mapRoles: line 3, column 1: ..." when rc != 0 */
} aa_list_t;

/* Parse one list's text (YAML 1.1, bounded: AA_MAX_DATA_BYTES,
 * AA_PARSE_MAX_NODES, AA_PARSE_MAX_DEPTH). text NULL: the key is absent.
 * Always fills *out (free with aa_list_free); returns out->rc. A YAML
 * error or a document that is not a list makes the whole key unusable,
 * as in the authenticator; entries that are not objects or lack the ARN
 * stay in doc (we keep them) with arn NULL. */
int aa_list_parse(aa_kind_t kind, const char *text, size_t len, aa_list_t *out);
/* The same from a list already decoded: out takes doc (a reference the
 * caller gives up). Returns out->rc (CK_EINVAL when doc is not an array). */
int aa_list_from_doc(aa_kind_t kind, json_t *doc, aa_list_t *out);
void aa_list_free(aa_list_t *l);

/* ---- Emitter (emit.c) --------------------------------------------------- */

typedef struct aa_cache aa_cache_t; /* the merge's parse cache (below) */

/* YAML text for a list (a JSON array of entries): block sequence, objects
 * as block mappings, nested values in flow style, every string
 * double-quoted with escapes (controls, U+0085, U+2028/9, bidi and
 * zero-width characters), booleans/null/numbers in the plain form YAML 1.1
 * reads back as the same JSON type. Mapping keys are plain only when they
 * are identifiers that YAML 1.1 cannot read as anything but a string.
 * An empty array gives "[]\n". *out is malloc'd (caller frees).
 * Returns 0, CK_ENOMEM, or CK_EINVAL for a value JSON cannot hold. */
int aa_emit_list(const json_t *list, char **out);

/* aa_emit_list, then parse the text back with aa_list_parse and require
 * the identical JSON: a mismatch is CK_EINVAL and *out stays NULL. With a
 * cache (may be NULL), an entry whose text an earlier emit of this kind
 * checked is compared with the entry that text parsed back to (kept by
 * the cache), and only the other entries are parsed back (together, a few
 * hundred per parse); the cache then keeps the texts of this emit with
 * their entries. Entries of list must never be modified afterwards (build
 * new ones). When back is not NULL and 0 is returned, *back is the text
 * parsed back (free with aa_list_free; its entries may be those of list,
 * which are equal); otherwise it is zeroed. */
int aa_emit_checked(aa_kind_t kind, const json_t *list, aa_cache_t *cache, char **out,
                    aa_list_t *back, ck_error_t *err);

/* Hash of an entry for the ownership annotation: 16 lower-case hex
 * digits (64 bits of SHA-256 over canonical JSON) + NUL into out. It only
 * detects edits: v1 records keep all 64 bits, v2 records the first 24. */
void aa_entry_hash(const json_t *entry, char out[17]);

/* qsort comparator for an array of C strings (parse.c). */
int aa_cmp_strp(const void *a, const void *b);

/* ---- SHA-256 (sha.c) ------------------------------------------------------ */

/* The SHA-256 algorithm, fetched once per process (SHA256() and
 * EVP_sha256() look it up on every call, which costs as much as hashing a
 * short entry). Borrowed, never freed; NULL when OpenSSL has none. */
const struct evp_md_st *aa_sha256_md(void);

/* SHA-256 of data[0..len) into out; false when OpenSSL fails. */
bool aa_sha256(const void *data, size_t len, unsigned char out[32]);

/* The n bytes of in as 2n lower-case hex digits and a NUL into out. */
void aa_hex(const unsigned char *in, size_t n, char *out);

/* ---- Merge (merge.c, owners.c, cache.c) -------------------------------- */

typedef enum aa_drift_mode {
  AA_DRIFT_REPAIR = 0, /* rewrite owned entries edited or removed by others */
  AA_DRIFT_REPORT,     /* leave them as found, report them in drift */
} aa_drift_mode_t;

/* Lists parsed by earlier merges, kept so that a merge whose live text is
 * one parsed or written a moment ago does not parse it again (in a burst,
 * the live text is always our own last write). Per kind, the last two
 * texts and their parse. Also the objects the last merge read: an object
 * handed in again as the very same json_t (ck_informer_snapshot_memo does
 * that for unchanged objects) is not read and validated again. It holds a
 * reference to each, so never modify an object between merges. Optional
 * (aa_opts_t.cache); used by one merge at a time; the caller frees it
 * with aa_cache_free, and may empty it with aa_cache_clear whenever it
 * wants the memory back. Also each entry text the last emit of each kind
 * wrote, with its parse (aa_emit_checked). */
aa_cache_t *aa_cache_new(void); /* NULL: out of memory */
void aa_cache_clear(aa_cache_t *cache);
void aa_cache_free(aa_cache_t *cache);
/* Read obj ahead of the merge, as the merge would (with finalizer; NULL:
 * AA_DEFAULT_FINALIZER, as aa_opts_t), and key the parse by a new
 * stand-in at once, returned in *stand_in (a new reference): the next
 * aa_reconcile with this cache reads it by that stand-in, so the caller
 * need not hold obj's tree until then (ck_informer_memo_set_reduce does
 * that for a memo's snapshots, one object at a time). obj is borrowed.
 * Returns 1; 0 when obj is already a stand-in (or cache is NULL); or
 * CK_ENOMEM. *stand_in is NULL unless 1. */
int aa_cache_object_read(aa_cache_t *cache, const json_t *obj, const char *finalizer,
                         json_t **stand_in);
/* Whether obj is such a stand-in. aa_reconcile returns AA_ESTANDIN when
 * objects holds a stand-in whose parse the cache no longer has (it was
 * cleared, or another cache was passed): take the snapshot again without
 * stand-ins. */
bool aa_is_stand_in(const json_t *obj);
#define AA_ESTANDIN (-64)
/* Merges that found a live list in the cache (for tests and metrics). */
size_t aa_cache_hits(const aa_cache_t *cache);
/* Objects read from the cache instead of parsed (for tests and metrics). */
size_t aa_cache_object_hits(const aa_cache_t *cache);

typedef struct aa_opts {
  int max_removals;      /* 0: AA_DEFAULT_MAX_REMOVALS; < 0: unlimited */
  aa_drift_mode_t drift;
  const char *finalizer; /* NULL: AA_DEFAULT_FINALIZER */
  /* Owned entries present but no AWSAuth object at all is what an
   * unsynced cache looks like: refused unless this is set. */
  bool allow_orphan_removal;
  /* Used when the live ConfigMap is absent (NULL): the last ConfigMap seen,
   * whose foreign entries and other keys are restored. Borrowed. */
  const json_t *last_known;
  aa_cache_t *cache; /* NULL: parse the live lists every time. Borrowed. */
} aa_opts_t;

typedef enum aa_block {
  AA_BLOCK_NONE = 0,
  AA_BLOCK_UNPARSABLE, /* mapRoles/mapUsers unreadable: Degraded, write nothing */
  AA_BLOCK_ANNOTATION, /* the ownership annotation is unreadable */
  AA_BLOCK_REMOVALS,   /* more than max_removals owned entries would go */
  AA_BLOCK_NODES,      /* a system:nodes entry would go without its owner's deletion */
  AA_BLOCK_NO_OBJECTS, /* owned entries but no AWSAuth at all (cache?) */
  AA_BLOCK_TOO_BIG,    /* data over 1 MiB or annotations over 256 KiB */
  AA_BLOCK_ROUNDTRIP,  /* the emitted text did not parse back identically */
} aa_block_t;

/* "TooManyRemovals" ... (CamelCase, usable as an Event/condition reason). */
const char *aa_block_reason(aa_block_t b);

/* What the reconcile should report on one AWSAuth (index = input index). */
typedef struct aa_obj_status {
  char *ns, *name, *uid; /* copies ("" when missing) */
  int64_t generation;    /* metadata.generation, for observedGeneration */
  int64_t created;       /* metadata.creationTimestamp (ck_rfc3339_parse);
                          * INT64_MAX when missing or unreadable */
  char status_digest[33]; /* aa_obj_status_digest of the object ("" when it
                           * could not be computed: matches no want) */
  bool valid;            /* false: condition Invalid=True, message below */
  char *invalid_msg;     /* NULL when valid; names the field */
  bool conflicted;       /* Conflicted=True; conflict_msg says with whom */
  char *conflict_msg;
  bool suspended;        /* spec.suspend: its entries are left as they are */
  bool deleting;         /* deletionTimestamp set */
  bool retain;           /* spec.deletionPolicy == Retain */
  bool take_over;        /* spec.takeOver */
  aa_kind_t kind;
  json_t *arns;          /* normalised ARNs (array of strings), owned */
  json_t *warnings;      /* array of strings, owned */
  size_t entries;        /* entries it owns in the result */
  bool has_finalizer;    /* metadata.finalizers holds opts->finalizer */
  /* Nothing of it is in the live ConfigMap/annotation: the finalizer can go
   * now (when deleting). */
  bool release_now;
  /* Nothing of it remains once this result is written (or nothing needed
   * writing): after a successful write, the finalizer can go. False when
   * blocked. */
  bool release_after_write;
} aa_obj_status_t;

typedef struct aa_result {
  aa_block_t blocked;
  char *blocked_msg;     /* NULL unless blocked */
  bool write_needed;     /* data_changed || annotation_changed */
  bool data_changed;
  bool annotation_changed;
  bool recreate;         /* the ConfigMap is absent and must be created */
  char *map_roles;       /* new data.mapRoles, or NULL: leave the key alone */
  char *map_users;       /* new data.mapUsers, or NULL: leave the key alone */
  char *owners;          /* new annotation value, v1 JSON or "v2:..." (always set) */
  size_t owned, foreign; /* entries in the result */
  size_t added, updated, removed, drifted, repaired;
  size_t data_bytes;     /* size of data+binaryData after the write */
  char *parse_error;     /* the live data's parse errors, or NULL */
  json_t *drift;         /* [{"key","list","owner","what","action"}], owned */
  aa_obj_status_t *objs; /* nobjs, in input order */
  size_t nobjs;
} aa_result_t;

/* Read and validate one AWSAuth object (spec.c). Always fills *st (free
 * its members with aa_obj_status_clear). When the object is valid,
 * *desired is a new array of the entries it asks for, as they will be
 * written: {"rolearn"|"userarn": normalised ARN, "username": ..,
 * "groups": [..]} in spec order; otherwise NULL and st->invalid_msg names
 * the field ("spec.mapRoles[2].rolearn: ..."). Returns 0 or CK_ENOMEM. */
int aa_object_parse(const json_t *obj, const char *finalizer, aa_obj_status_t *st,
                    json_t **desired);
void aa_obj_status_clear(aa_obj_status_t *st);
/* *dst = a copy of *src (strings copied, arns/warnings shared: both are
 * read-only once parsed). 0, or CK_ENOMEM with *dst cleared. */
int aa_obj_status_copy(aa_obj_status_t *dst, const aa_obj_status_t *src);

/* Compute everything one reconcile of aws-auth needs.
 *  live:    the ConfigMap as cached, or NULL when it does not exist. Its
 *           data may be missing; only data.mapRoles/mapUsers are read.
 *  objects: JSON array of the AWSAuth objects as cached (all the watched
 *           namespaces; any order). NULL = none.
 *  opts:    may be NULL.
 * All borrowed. On 0, *out is a new result (free with aa_result_free),
 * blocked or not: a blocked result still carries statuses, and its
 * map_roles/map_users are NULL and write_needed false. Returns CK_EINVAL
 * for arguments of the wrong JSON type, CK_ENOMEM. */
int aa_reconcile(const json_t *live, const json_t *objects, const aa_opts_t *opts,
                 aa_result_t **out, ck_error_t *err);
void aa_result_free(aa_result_t *r);

/* The ConfigMap to write for `r` (write_needed, not blocked): a copy of
 * `live` (or, when NULL, of opts->last_known without server fields, or a
 * fresh kube-system/aws-auth) with data.mapRoles/mapUsers and the
 * annotation replaced; everything else (mapAccounts, other keys, labels,
 * other annotations, resourceVersion for the precondition) kept.
 * *out is a new reference; its top level, metadata, annotations and data
 * objects are its own, what lies below them is shared with live (or
 * last_known): change those four objects only. */
int aa_apply(const json_t *live, const json_t *last_known, const aa_result_t *r, json_t **out,
             ck_error_t *err);

#endif

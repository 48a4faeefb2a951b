/* What the AWSAuth cache keeps of each object's status.
 *
 * The operator reads an object's status for two things only: whether it
 * already says what the next merge would write (then no request is made),
 * and, when it does not, the lastTransitionTime of each condition to carry
 * into the new status. The whole status (five conditions with messages,
 * the ARNs, the warnings) is most of a cached object; the informer's
 * transform replaces it with:
 *
 *   {"crdkit.io/digest": "<32 hex>",     SHA-256 (first 128 bits) of the
 *                                        fields the operator compares
 *    "t": "Invalid=False@2026-01-02T03:04:05Z,Conflicted=False,...",
 *                                        the five known conditions'
 *                                        status and lastTransitionTime
 *                                        (no "@time": the one before's)
 *    "x": [...]}                         conditions of other types, verbatim
 *
 * A status whose digest equals aa_status_want_digest of what the merge
 * decided is current. SHA-256 rather than a fast hash: whoever may write
 * an AWSAuth's status must not be able to forge one that the operator then
 * takes as current. Pure functions, thread-safe.
 */
#ifndef AWSAUTH_STATCACHE_H
#define AWSAUTH_STATCACHE_H

#include "crdkit/objects.h"

#include <jansson.h>
#include <stdint.h>

#define AA_STATUS_DIGEST_KEY "crdkit.io/digest"
#define AA_NCONDS 5

/* The condition types the operator writes, in the order of want.c[]. */
extern const char *const aa_cond_types[AA_NCONDS];

/* What the next status write would say. arns/warnings: arrays of strings,
 * NULL meaning empty; borrowed. c[i].type must be aa_cond_types[i]. */
typedef struct aa_status_want {
  int64_t generation;
  const char *type;
  int64_t entries;
  const json_t *arns, *warnings;
  ck_condition_t c[AA_NCONDS];
} aa_status_want_t;

/* out: 32 hex digits and a NUL. Return 0, or CK_ENOMEM / CK_EIO (then out
 * is "" and matches nothing). */
int aa_status_want_digest(const aa_status_want_t *want, char out[33]);

/* The digest of a status as the API returns it (NULL or not an object: a
 * digest no want has). */
int aa_status_digest(const json_t *status, char out[33]);

/* The digest of obj's status whether obj came through the transform or
 * not (a response of the API). Same returns as above. */
int aa_obj_status_digest(const json_t *obj, char out[33]);

/* The informer transform (ck_transform_fn): replaces obj's status as
 * described above; an object without a status is left alone. Returns
 * obj, or NULL (drops it) only when out of memory. */
json_t *aa_status_transform(void *ctx, json_t *obj);

/* A status to build the next one on: the conditions with their status and
 * lastTransitionTime (reason and message empty), other conditions
 * verbatim; from a transformed status or (a deep copy of) a whole one. A
 * new reference; NULL when out of memory. */
json_t *aa_status_base(const json_t *status);

#endif

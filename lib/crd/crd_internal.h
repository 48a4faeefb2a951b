/* Internals of lib/crd shared between its files. */
#ifndef CK_CRD_INTERNAL_H
#define CK_CRD_INTERNAL_H

#include "crdkit/crd.h"
#include "util/buf.h"

#include <jansson.h>
#include <regex.h>

/* The field's type with CK_CRD_AUTO resolved (AUTO stays when it cannot
 * be inferred). */
ck_crd_type_t ck_crd_field_type(const ck_crd_field_t *f);

/* The OpenAPI type name ("string", "object" for maps, ...), NULL for
 * CK_CRD_AUTO. Static storage. */
const char *ck_crd_type_name(ck_crd_type_t t);

/* The version named `name` (NULL: the storage one), or NULL. The table
 * must have passed ck_crd_check. */
const ck_crd_version_t *ck_crd_find_version(const ck_crd_t *crd, const char *name);

/* Compile a schema pattern as POSIX ERE after rewriting the RE2 classes
 * \d \D \s \S \w \W. Returns 0 or the regcomp error; regfree on 0. */
int ck_crd_regcomp(regex_t *re, const char *pattern);

/* Validate `v` against one field's schema (not its name/required, which
 * belong to the parent); `path` holds the field path and is restored on
 * return. Errors are appended to `errs`. Returns 0 or CK_ENOMEM. */
int ck_crd_validate_value(const ck_crd_field_t *f, const json_t *v, ck_buf_t *path,
                          ck_crd_errors_t *errs);

#endif

/* A hash map from strings to pointers (private to the library).
 *
 * Open addressing with linear probing and backward-shift deletion, so
 * there are no tombstones and lookups stay short after many deletes. Keys
 * are borrowed: the map stores the pointer, and the caller keeps the
 * string alive and unchanged while it is in the map (typically the key is
 * a field of the value). Not thread-safe: callers lock. A zeroed
 * ck_strmap_t is an empty map.
 */
#ifndef CK_UTIL_STRMAP_H
#define CK_UTIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ck_strmap_slot {
  const char *key; /* NULL: empty */
  void *value;
  uint64_t hash;
} ck_strmap_slot_t;

typedef struct ck_strmap {
  ck_strmap_slot_t *slots;
  size_t cap; /* 0 or a power of two */
  size_t len;
} ck_strmap_t;

uint64_t ck_strhash(const char *s);
void *ck_strmap_get(const ck_strmap_t *m, const char *key);
/* Insert or replace. Returns 0, or CK_ENOMEM (map unchanged). When
 * `old` is not NULL it receives the replaced value (NULL when new). */
int ck_strmap_put(ck_strmap_t *m, const char *key, void *value, void **old);
/* Point the entry of `key` at a new key pointer and value without
 * allocating (the new key must hold the same string). Returns false, map
 * unchanged, when the key is absent. */
bool ck_strmap_repoint(ck_strmap_t *m, const char *key, void *value);
/* Replace every value v by fn(ctx, v, &key), which also sets the entry's
 * new key pointer (the same string, moved). */
void ck_strmap_move(ck_strmap_t *m, void *(*fn)(void *ctx, void *value, const char **key),
                    void *ctx);
/* Remove; returns the value or NULL when absent. */
void *ck_strmap_del(ck_strmap_t *m, const char *key);
/* Free the slot array (not keys or values). */
void ck_strmap_free(ck_strmap_t *m);
/* Iterate: `*pos` starts at 0; returns false at the end. The map must not
 * change during the iteration. */
bool ck_strmap_next(const ck_strmap_t *m, size_t *pos, const char **key, void **value);

#endif

/* Memory for long-lived blocks kept apart from malloc's heap (private to
 * the library).
 *
 * A long-running cache that takes its entries from malloc gets them
 * between the short-lived allocations of whatever was running at the time
 * (parse trees, responses), and every page that keeps one live entry
 * stays resident when the rest is freed. A pool takes blocks from its own
 * anonymous mappings instead: chunks filled in order, with a count of the
 * live bytes in each. A chunk is unmapped as soon as it holds nothing
 * live, and its owner can copy the live blocks into a new pool when too
 * much of the old one is dead (see ck_pool_wasteful).
 *
 * Not thread-safe: the owner locks. A zeroed ck_pool_t is an empty pool.
 */
#ifndef CK_UTIL_POOL_H
#define CK_UTIL_POOL_H

#include <stddef.h>

typedef struct ck_pool_chunk ck_pool_chunk_t;

typedef struct ck_pool {
  ck_pool_chunk_t *all; /* every chunk (a list) */
  ck_pool_chunk_t *cur; /* the chunk being filled, or NULL */
  size_t live;          /* bytes in blocks not yet released */
  size_t used;          /* bytes handed out from the chunks still mapped */
  size_t mapped;        /* bytes of all chunks */
} ck_pool_t;

/* A block of n bytes (n > 0), aligned for any type, or NULL when out of
 * memory. *chunk receives the chunk it lies in: ck_pool_release needs it.
 * The memory is not initialised. */
void *ck_pool_alloc(ck_pool_t *p, size_t n, ck_pool_chunk_t **chunk);

/* The block of n bytes (the size given to ck_pool_alloc) in chunk is no
 * longer used. The chunk is unmapped when nothing in it is live. */
void ck_pool_release(ck_pool_t *p, ck_pool_chunk_t *chunk, size_t n);

/* True when more than a third of the mapped bytes are dead and that is
 * at least `slack` bytes: time to copy the live blocks into a new pool. */
int ck_pool_wasteful(const ck_pool_t *p, size_t slack);

/* Unmap every chunk, live blocks or not; the pool is empty again. */
void ck_pool_clear(ck_pool_t *p);

#endif

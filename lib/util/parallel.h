/* Run independent jobs on a few threads (private to the library and the
 * built-in operators). */
#ifndef CK_UTIL_PARALLEL_H
#define CK_UTIL_PARALLEL_H
#include <stddef.h>

/* Call fn(ctx, i) for every i in [0, n) on up to `width` threads, the
 * caller's own included, and return when all calls are done. Each i is
 * called exactly once, in no particular order; fn must be thread-safe for
 * distinct i. width <= 1, n <= 1, or threads that cannot be started:
 * the calls run on the caller's thread. */
void ck_parallel_for(size_t n, int width, void (*fn)(void *ctx, size_t i), void *ctx);

#endif

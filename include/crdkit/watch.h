/* crdkit/watch.h: watch streams.
 *
 * The stream is decoded incrementally as bytes arrive: the I/O thread only
 * frames lines (each byte is scanned once); the thread that calls
 * ck_watch_next decodes each event once. One ck_watch_t is used by one
 * thread at a time; many watches share the client's connection (HTTP/2).
 */
#ifndef CRDKIT_WATCH_H
#define CRDKIT_WATCH_H

#include "crdkit/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ck_watch ck_watch_t;

typedef enum ck_watch_type {
  CK_WATCH_ADDED = 1,
  CK_WATCH_MODIFIED,
  CK_WATCH_DELETED,
  CK_WATCH_BOOKMARK,
  CK_WATCH_ERROR,
} ck_watch_type_t;

typedef struct ck_watch_event {
  ck_watch_type_t type;
  json_t *object; /* owned by the event: ck_watch_event_clear releases it */
} ck_watch_event_t;

typedef struct ck_watch_opts {
  const char *resource_version; /* start after this version; NULL: "most recent" */
  const char *label_selector;
  const char *field_selector;
  bool no_bookmarks;            /* bookmarks are requested unless set */
  bool send_initial_events;     /* the watch-list stream (sendInitialEvents=true) */
  int timeout_seconds;          /* server-side end; 0: random 300..600 */
  int idle_timeout_s;           /* no byte for this long: dead; 0: 90 */
  size_t max_event_bytes;       /* one event's bound; 0: 16 MiB */
} ck_watch_opts_t;

/* Open a watch. Waits until the server has answered with its headers, so
 * an immediate refusal (403, 410, 404) is returned here as CK_EAPI.
 * On success *out is the watch; free with ck_watch_free. */
int ck_watch_open(ck_client_t *c, const ck_resource_t *res, const char *ns,
                  const ck_watch_opts_t *opts, ck_watch_t **out, ck_error_t *err);

/* Next event. Returns:
 *   0            an event (clear it with ck_watch_event_clear);
 *   CK_ETIMEDOUT no event within timeout_ms (<0 waits forever); call again;
 *   CK_ECLOSED   the server ended the stream normally: reopen from
 *                ck_watch_resource_version();
 *   CK_EAPI      an ERROR event or error answer; ck_error_is_gone(err)
 *                means the version is too old: relist;
 *   CK_ETRANSPORT the connection failed or went silent past idle_timeout_s;
 *   CK_ETOOBIG / CK_EPARSE  an event over the bound / not decodable.
 * After any error other than CK_ETIMEDOUT the watch is finished. */
int ck_watch_next(ck_watch_t *w, int timeout_ms, ck_watch_event_t *ev, ck_error_t *err);

/* The last resourceVersion seen (events and bookmarks), or the one the
 * watch started from. Borrowed; valid until the next ck_watch_next. */
const char *ck_watch_resource_version(const ck_watch_t *w);

/* True once a bookmark carrying the annotation
 * "k8s.io/initial-events-end" was seen (watch-list streams). */
bool ck_watch_initial_events_done(const ck_watch_t *w);

void ck_watch_event_clear(ck_watch_event_t *ev);

/* Cancel (if still open) and free. NULL is a no-op. */
void ck_watch_free(ck_watch_t *w);

/* Decode one watch event line (a JSON object with "type" and "object").
 * Exposed for tests and fuzzing. */
int ck_watch_event_decode(const char *line, size_t len, ck_watch_event_t *ev, ck_error_t *err);

#ifdef __cplusplus
}
#endif
#endif

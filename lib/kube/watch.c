/* Watch streams: the I/O thread frames lines into a queue, the consumer
 * decodes each line once. */
#include "crdkit/watch.h"

#include "kube/kube_internal.h"
#include "util/jsonin.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct line {
  struct line *next;
  size_t len;
  char data[]; /* NUL-terminated */
} line_t;

struct ck_watch {
  ck_client_t *client;
  ck_xfer_t x;
  ck_cred_t cred;
  char *path;
  ck_framer_t framer;
  /* queue, guarded by the transport lock (shared with x.cond) */
  line_t *head, *tail;
  int frame_error; /* set by the sink on the I/O thread */
  bool finished;   /* an error was returned: the watch is over */
  char rv[64];
  bool initial_done;
  bool submitted; /* the I/O thread knows x: cancel before freeing */
  /* Dead-stream detection: ck_now_ms() of the last byte (set by the sink
   * on the I/O thread) and the allowed silence. */
  _Atomic int64_t last_byte_ms;
  int64_t idle_ms;
};

static int push_line(void *ctx, const char *data, size_t len) {
  ck_watch_t *w = ctx;
  line_t *l = malloc(sizeof *l + len + 1);
  if (!l)
    return CK_ENOMEM;
  l->next = NULL;
  l->len = len;
  memcpy(l->data, data, len);
  l->data[len] = '\0';
  pthread_mutex_t *lock = ck_transport_lock(ck_client_transport(w->client));
  pthread_mutex_lock(lock);
  if (w->tail)
    w->tail->next = l;
  else
    w->head = l;
  w->tail = l;
  pthread_cond_broadcast(&w->x.cond);
  pthread_mutex_unlock(lock);
  return 0;
}

/* Runs on the I/O thread for each chunk of a 2xx body. */
static int sink(void *ctx, const char *data, size_t len) {
  ck_watch_t *w = ctx;
  atomic_store_explicit(&w->last_byte_ms, ck_now_ms(), memory_order_relaxed);
  int rc = ck_framer_feed(&w->framer, data, len, push_line, w);
  if (rc)
    w->frame_error = rc;
  return rc;
}

int ck_watch_event_decode(const char *line, size_t len, ck_watch_event_t *ev, ck_error_t *err) {
  memset(ev, 0, sizeof *ev);
  ck_json_err_t je;
  json_t *doc = ck_json_loadb(line, len, false, &je);
  if (!doc)
    return ck_error_set(err, CK_EPARSE, "watch event is not JSON (byte %zu: %s)", je.position,
                        je.text);
  const char *type = json_string_value(json_object_get(doc, "type"));
  json_t *obj = json_object_get(doc, "object");
  int rc = 0;
  if (!type || !json_is_object(obj)) {
    rc = ck_error_set(err, CK_EPARSE, "watch event without type or object");
  } else if (strcmp(type, "ADDED") == 0) {
    ev->type = CK_WATCH_ADDED;
  } else if (strcmp(type, "MODIFIED") == 0) {
    ev->type = CK_WATCH_MODIFIED;
  } else if (strcmp(type, "DELETED") == 0) {
    ev->type = CK_WATCH_DELETED;
  } else if (strcmp(type, "BOOKMARK") == 0) {
    ev->type = CK_WATCH_BOOKMARK;
  } else if (strcmp(type, "ERROR") == 0) {
    ev->type = CK_WATCH_ERROR;
  } else {
    rc = ck_error_set(err, CK_EPARSE, "watch event of unknown type \"%.32s\"", type);
  }
  if (rc == 0)
    ev->object = json_incref(obj);
  json_decref(doc);
  return rc;
}

void ck_watch_event_clear(ck_watch_event_t *ev) {
  if (!ev)
    return;
  json_decref(ev->object);
  ev->object = NULL;
  ev->type = 0;
}

const char *ck_watch_resource_version(const ck_watch_t *w) { return w->rv; }
bool ck_watch_initial_events_done(const ck_watch_t *w) { return w->initial_done; }

int ck_watch_open(ck_client_t *c, const ck_resource_t *res, const char *ns,
                  const ck_watch_opts_t *opts, ck_watch_t **out, ck_error_t *err) {
  *out = NULL;
  ck_watch_opts_t o = opts ? *opts : (ck_watch_opts_t){0};
  char *base = ck_resource_path(res, res && res->namespaced ? ns : NULL, NULL, NULL);
  if (!base || !res) { /* (res: for the analyzer; base is NULL then) */
    free(base);
    return ck_error_set(err, CK_EINVAL, "watch: invalid resource or namespace");
  }
  ck_watch_t *w = calloc(1, sizeof *w);
  if (!w) {
    free(base);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  w->client = c;
  w->framer.max_line = o.max_event_bytes ? o.max_event_bytes : (16u << 20);
  if (o.resource_version)
    snprintf(w->rv, sizeof w->rv, "%s", o.resource_version);
  int timeout_s = o.timeout_seconds > 0 ? o.timeout_seconds
                                        : 300 + (int)ck_rand_below(301); /* spread reconnects */
  ck_buf_t p = {0};
  ck_buf_printf(&p, "%s?watch=true&timeoutSeconds=%d", base, timeout_s);
  free(base);
  if (!o.no_bookmarks)
    ck_buf_puts(&p, "&allowWatchBookmarks=true");
  if (o.send_initial_events)
    ck_buf_puts(&p, "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan");
  if (o.resource_version && *o.resource_version) {
    ck_buf_puts(&p, "&resourceVersion=");
    ck_buf_urlencode(&p, o.resource_version);
  } else if (o.send_initial_events) {
    ck_buf_puts(&p, "&resourceVersion=");
  }
  if (o.label_selector && *o.label_selector) {
    ck_buf_puts(&p, "&labelSelector=");
    ck_buf_urlencode(&p, o.label_selector);
  }
  if (o.field_selector && *o.field_selector) {
    ck_buf_puts(&p, "&fieldSelector=");
    ck_buf_urlencode(&p, o.field_selector);
  }
  if (p.oom) {
    ck_buf_free(&p);
    free(w);
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  }
  w->path = ck_buf_steal(&p);

  bool reauth = false;
  for (;;) {
    int rc = ck_auth_get(ck_client_auth(c), &w->cred, err);
    if (rc == 0)
      rc = ck_client_prepare(c, &w->x, "GET", w->path, NULL, NULL, 0, 0, &w->cred, err);
    if (rc) {
      ck_watch_free(w);
      return rc;
    }
    w->x.sink = sink;
    w->x.sink_ctx = w;
    w->x.body_max = 1u << 20; /* for error answers */
    /* A dead-watch detector: less than 1 byte/s for idle_timeout_s aborts.
     * Bookmarks arrive about once a minute, so a live stream is never idle
     * that long. */
    curl_easy_setopt(w->x.easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(w->x.easy, CURLOPT_LOW_SPEED_TIME,
                     (long)(o.idle_timeout_s > 0 ? o.idle_timeout_s : 90));
    ck_transport_t *t = ck_client_transport(c);
    w->submitted = (rc = ck_transport_submit(t, &w->x)) == 0;
    if (rc) {
      ck_watch_free(w);
      return ck_error_set(err, rc, "watch %s: the client is shutting down", res->resource);
    }
    int64_t wait_ms = ck_client_connect_timeout_ms(c) + 30000;
    if (ck_transport_wait_headers(t, &w->x, wait_ms) != 0) {
      ck_watch_free(w);
      return ck_error_set(err, CK_ETIMEDOUT, "watch %s: no answer within %lld ms", res->resource,
                          (long long)wait_ms);
    }
    pthread_mutex_lock(ck_transport_lock(t));
    bool done = w->x.done;
    long status = w->x.status;
    pthread_mutex_unlock(ck_transport_lock(t));
    if (done && status == 0) {
      rc = ck_xfer_transport_error(&w->x, "GET", w->path, err);
      ck_watch_free(w);
      return rc;
    }
    if (status >= 200 && status < 300) {
      ck_client_count_request(c, "WATCH", status);
      break;
    }
    /* An error answer: wait for its body, then decode the Status. */
    ck_transport_wait(t, &w->x, -1);
    ck_client_count_request(c, "WATCH", status);
    ck_status_decode(status, w->x.body.data, w->x.body.len,
                     w->x.retry_after[0] ? w->x.retry_after : NULL, w->path, err);
    if (status == 401 && !reauth && ck_auth_invalidate(ck_client_auth(c), w->cred.generation)) {
      reauth = true;
      w->submitted = false;
      ck_xfer_cleanup(&w->x);
      ck_cred_clear(&w->cred);
      continue;
    }
    ck_watch_free(w);
    return CK_EAPI;
  }
  w->idle_ms = (int64_t)(o.idle_timeout_s > 0 ? o.idle_timeout_s : 90) * 1000;
  atomic_store_explicit(&w->last_byte_ms, ck_now_ms(), memory_order_relaxed);
  *out = w;
  return 0;
}

static void track_version(ck_watch_t *w, const ck_watch_event_t *ev) {
  json_t *meta = json_object_get(ev->object, "metadata");
  const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
  if (rv && *rv)
    snprintf(w->rv, sizeof w->rv, "%s", rv);
  if (ev->type == CK_WATCH_BOOKMARK) {
    json_t *ann = json_object_get(meta, "annotations");
    const char *v = json_string_value(json_object_get(ann, "k8s.io/initial-events-end"));
    if (v && strcmp(v, "true") == 0)
      w->initial_done = true;
  }
}

int ck_watch_next(ck_watch_t *w, int timeout_ms, ck_watch_event_t *ev, ck_error_t *err) {
  memset(ev, 0, sizeof *ev);
  if (w->finished)
    return ck_error_set(err, CK_ECLOSED, "watch: already finished");
  ck_transport_t *t = ck_client_transport(w->client);
  pthread_mutex_t *lock = ck_transport_lock(t);
  int64_t end_ms = timeout_ms < 0 ? INT64_MAX : ck_now_ms() + timeout_ms;
  bool dead = false;
  pthread_mutex_lock(lock);
  while (!w->head && !w->x.done) {
    /* Wake for the caller's deadline or when the stream has been silent
     * for idle_ms (libcurl's low-speed check, which averages over several
     * seconds, only notices later). */
    int64_t now = ck_now_ms();
    int64_t idle_end =
        atomic_load_explicit(&w->last_byte_ms, memory_order_relaxed) + w->idle_ms;
    if (now >= idle_end) {
      dead = true;
      break;
    }
    if (now >= end_ms) {
      pthread_mutex_unlock(lock);
      return CK_ETIMEDOUT;
    }
    struct timespec dl = ck_deadline_after_ms((end_ms < idle_end ? end_ms : idle_end) - now);
    pthread_cond_timedwait(&w->x.cond, lock, &dl);
  }
  if (dead) {
    pthread_mutex_unlock(lock);
    ck_transport_cancel(t, &w->x);
    w->finished = true;
    return ck_error_set(err, CK_ETRANSPORT, "watch %s: no data for %lld s (dead connection)",
                        w->path, (long long)(w->idle_ms / 1000));
  }
  line_t *l = w->head;
  if (l) {
    w->head = l->next;
    if (!w->head)
      w->tail = NULL;
  }
  pthread_mutex_unlock(lock);

  if (!l) {
    /* The transfer is over and every line was delivered. */
    w->finished = true;
    if (w->frame_error == CK_ETOOBIG)
      return ck_error_set(err, CK_ETOOBIG, "watch %s: an event exceeds %zu bytes", w->path,
                          w->framer.max_line);
    if (w->frame_error)
      return ck_error_set(err, w->frame_error, "watch %s: %s", w->path,
                          ck_strerror(w->frame_error));
    if (w->x.result == CURLE_OK)
      return ck_error_set(err, CK_ECLOSED, "watch %s: the server ended the stream", w->path);
    if (w->x.result == CURLE_OPERATION_TIMEDOUT)
      return ck_error_set(err, CK_ETRANSPORT, "watch %s: no data for too long (dead connection)",
                          w->path);
    return ck_xfer_transport_error(&w->x, "GET", w->path, err);
  }
  int rc = ck_watch_event_decode(l->data, l->len, ev, err);
  free(l);
  if (rc) {
    w->finished = true;
    return rc;
  }
  if (ev->type == CK_WATCH_ERROR) {
    rc = ck_status_from_json(500, ev->object, w->path, err);
    ck_watch_event_clear(ev);
    w->finished = true;
    return rc;
  }
  track_version(w, ev);
  return 0;
}

void ck_watch_free(ck_watch_t *w) {
  if (!w)
    return;
  if (w->submitted)
    ck_transport_cancel(ck_client_transport(w->client), &w->x);
  if (w->x.easy)
    ck_xfer_cleanup(&w->x);
  line_t *l = w->head;
  while (l) {
    line_t *n = l->next;
    free(l);
    l = n;
  }
  ck_framer_free(&w->framer);
  ck_cred_clear(&w->cred);
  free(w->path);
  free(w);
}

/* The I/O thread: one libcurl multi handle (one connection pool, HTTP/2
 * multiplexing) serving every request and watch of a client. Other threads
 * hand transfers over through a queue of operations and wait on a
 * condition variable; the I/O thread never runs user code. */
#include "kube/kube_internal.h"

#include "util/timeutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { OP_ADD = 1, OP_CANCEL };

struct ck_transport {
  CURLM *multi;
  pthread_t thread;
  pthread_mutex_t lock;
  ck_xfer_t *ops_head, *ops_tail;
  bool stop;
  bool started;
  uint64_t connects; /* sum of CURLINFO_NUM_CONNECTS of finished transfers */
};

/* For ck_client_connections_opened (client.c). */

pthread_mutex_t *ck_transport_lock(ck_transport_t *t) { return &t->lock; }

uint64_t ck_transport_connections_opened(ck_transport_t *t) {
  return __atomic_load_n(&t->connects, __ATOMIC_RELAXED);
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  ck_xfer_t *x = ud;
  size_t len = size * n;
  if (len >= 12 && strncmp(buf, "HTTP/", 5) == 0) {
    /* A new status line (also after 100-continue or a redirect): reset. */
    x->retry_after[0] = '\0';
  } else if (len > 12 && strncasecmp(buf, "retry-after:", 12) == 0) {
    size_t i = 12, j = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t'))
      i++;
    while (i < len && j + 1 < sizeof x->retry_after && buf[i] != '\r' && buf[i] != '\n')
      x->retry_after[j++] = buf[i++];
    x->retry_after[j] = '\0';
  } else if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
    long code = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200) { /* the final header block ended */
      x->status = code;
      pthread_mutex_lock(&x->t->lock);
      x->headers_done = true;
      pthread_cond_broadcast(&x->cond);
      pthread_mutex_unlock(&x->t->lock);
    }
  }
  return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud) {
  ck_xfer_t *x = ud;
  size_t len = size * n;
  if (x->status == 0)
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->sink && x->status >= 200 && x->status < 300) {
    if (x->sink(x->sink_ctx, buf, len) != 0) {
      x->sink_failed = true;
      return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return len;
  }
  size_t max = x->body_max ? x->body_max : (64u << 20);
  if (x->body.len + len > max) {
    x->body_too_big = true;
    return 0;
  }
  ck_buf_append(&x->body, buf, len);
  return x->body.oom ? 0 : len;
}

int ck_xfer_init(ck_xfer_t *x, ck_transport_t *t) {
  memset(x, 0, sizeof *x);
  x->t = t;
  x->easy = curl_easy_init();
  if (!x->easy)
    return CK_ENOMEM;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_cond_init(&x->cond, &ca);
  pthread_condattr_destroy(&ca);
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
  curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
  return 0;
}

void ck_xfer_cleanup(ck_xfer_t *x) {
  if (x->easy)
    curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->headers);
  ck_buf_free(&x->body);
  pthread_cond_destroy(&x->cond);
  x->easy = NULL;
  x->headers = NULL;
}

static void finish(ck_transport_t *t, ck_xfer_t *x, CURLcode res) {
  long nconn = 0;
  if (x->added && curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK &&
      nconn > 0)
    __atomic_add_fetch(&t->connects, (uint64_t)nconn, __ATOMIC_RELAXED);
  if (x->added)
    curl_multi_remove_handle(t->multi, x->easy);
  x->added = false;
  if (x->status == 0)
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
  pthread_mutex_lock(&t->lock);
  x->result = res;
  x->done = true;
  x->headers_done = true;
  pthread_cond_broadcast(&x->cond);
  pthread_mutex_unlock(&t->lock);
}

static void enqueue(ck_transport_t *t, ck_xfer_t *x, int op);

static void run_ops(ck_transport_t *t) {
  pthread_mutex_lock(&t->lock);
  ck_xfer_t *ops = t->ops_head;
  t->ops_head = t->ops_tail = NULL;
  pthread_mutex_unlock(&t->lock);
  while (ops) {
    ck_xfer_t *x = ops;
    pthread_mutex_lock(&t->lock);
    ops = x->next_op;
    int op = x->op;
    pthread_mutex_unlock(&t->lock);
    if (op == OP_ADD && !x->done) {
      if (curl_multi_add_handle(t->multi, x->easy) == CURLM_OK)
        x->added = true;
      else
        finish(t, x, CURLE_FAILED_INIT);
    } else if (op == OP_CANCEL && !x->done) {
      finish(t, x, CURLE_ABORTED_BY_CALLBACK);
    }
    /* Last touch of x: a canceller waits for op == 0 before freeing it.
     * A cancel that arrived while x was being added is queued again. */
    pthread_mutex_lock(&t->lock);
    bool again = op == OP_ADD && x->op == OP_CANCEL && !x->done;
    if (again) {
      enqueue(t, x, OP_CANCEL);
    } else {
      x->next_op = NULL;
      x->op = 0;
    }
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&t->lock);
    if (again)
      curl_multi_wakeup(t->multi);
  }
}

static void *io_main(void *arg) {
  ck_transport_t *t = arg;
  for (;;) {
    pthread_mutex_lock(&t->lock);
    bool stop = t->stop;
    pthread_mutex_unlock(&t->lock);
    if (stop)
      break;
    run_ops(t);
    int running = 0;
    curl_multi_perform(t->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(t->multi, &left))) {
      if (msg->msg != CURLMSG_DONE)
        continue;
      ck_xfer_t *x = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
      if (x)
        finish(t, x, msg->data.result);
    }
    curl_multi_poll(t->multi, NULL, 0, 1000, NULL);
  }
  /* Shutting down: fail whatever is still in flight or queued. */
  run_ops(t);
  return NULL;
}

int ck_transport_new(ck_transport_t **out, ck_error_t *err) {
  ck_transport_t *t = calloc(1, sizeof *t);
  if (!t)
    return ck_error_set(err, CK_ENOMEM, "out of memory");
  pthread_mutex_init(&t->lock, NULL);
  t->multi = curl_multi_init();
  if (!t->multi) {
    ck_transport_free(t);
    return ck_error_set(err, CK_ENOMEM, "cannot create a libcurl multi handle");
  }
  curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  /* No fixed CURLMOPT_MAXCONNECTS: the cache bound counts connections in
   * use, so a fixed 16 with more than 16 HTTP/1.1 watches open closed every
   * request's connection as it finished. libcurl's default scales with the
   * transfers in progress (4 per transfer). */
  int e = pthread_create(&t->thread, NULL, io_main, t);
  if (e) {
    ck_transport_free(t);
    return ck_error_set(err, CK_ENOMEM, "cannot start the I/O thread: %s", strerror(e));
  }
  t->started = true;
  *out = t;
  return 0;
}

void ck_transport_free(ck_transport_t *t) {
  if (!t)
    return;
  if (t->started) {
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_mutex_unlock(&t->lock);
    curl_multi_wakeup(t->multi);
    pthread_join(t->thread, NULL);
  }
  if (t->multi)
    curl_multi_cleanup(t->multi);
  pthread_mutex_destroy(&t->lock);
  free(t);
}

static void enqueue(ck_transport_t *t, ck_xfer_t *x, int op) {
  x->op = op;
  x->next_op = NULL;
  if (t->ops_tail)
    t->ops_tail->next_op = x;
  else
    t->ops_head = x;
  t->ops_tail = x;
}

int ck_transport_submit(ck_transport_t *t, ck_xfer_t *x) {
  pthread_mutex_lock(&t->lock);
  if (t->stop) {
    pthread_mutex_unlock(&t->lock);
    return CK_ECLOSED;
  }
  enqueue(t, x, OP_ADD);
  pthread_mutex_unlock(&t->lock);
  curl_multi_wakeup(t->multi);
  return 0;
}

static int wait_for(ck_transport_t *t, ck_xfer_t *x, int64_t timeout_ms, bool headers) {
  struct timespec dl = ck_deadline_after_ms(timeout_ms < 0 ? 0 : timeout_ms);
  int rc = 0;
  pthread_mutex_lock(&t->lock);
  while (!x->done && !(headers && x->headers_done)) {
    if (timeout_ms < 0) {
      pthread_cond_wait(&x->cond, &t->lock);
    } else if (pthread_cond_timedwait(&x->cond, &t->lock, &dl) == ETIMEDOUT) {
      rc = CK_ETIMEDOUT;
      break;
    }
  }
  pthread_mutex_unlock(&t->lock);
  return rc;
}

int ck_transport_wait(ck_transport_t *t, ck_xfer_t *x, int64_t timeout_ms) {
  return wait_for(t, x, timeout_ms, false);
}

int ck_transport_wait_headers(ck_transport_t *t, ck_xfer_t *x, int64_t timeout_ms) {
  return wait_for(t, x, timeout_ms, true);
}

void ck_transport_cancel(ck_transport_t *t, ck_xfer_t *x) {
  pthread_mutex_lock(&t->lock);
  if (x->done) {
    pthread_mutex_unlock(&t->lock);
    return;
  }
  if (x->op == OP_ADD) {
    /* Still queued: mark it so the I/O thread finishes it unseen. */
    x->op = OP_CANCEL;
  } else {
    enqueue(t, x, OP_CANCEL);
  }
  pthread_mutex_unlock(&t->lock);
  curl_multi_wakeup(t->multi);
  /* Wait until it is finished AND out of the operation queue. */
  pthread_mutex_lock(&t->lock);
  while (!x->done || x->op != 0)
    pthread_cond_wait(&x->cond, &t->lock);
  pthread_mutex_unlock(&t->lock);
}

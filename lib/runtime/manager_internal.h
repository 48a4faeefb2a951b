/* What controllers need from their manager (private). */
#ifndef CK_RUNTIME_MANAGER_INTERNAL_H
#define CK_RUNTIME_MANAGER_INTERNAL_H

#include "crdkit/manager.h"
#include "crdkit/workqueue.h"

/* ck_manager_informer with a transform (see ck_transform_fn): shared only
 * with requests of the same selectors, function and ctx. Borrowed. */
ck_informer_t *ck_manager_informer_transformed(ck_manager_t *m, const ck_resource_t *res,
                                               const char *label_selector,
                                               const char *field_selector,
                                               ck_transform_fn transform, void *transform_ctx,
                                               ck_error_t *err);
/* An informer the manager has for res: the first created without a
 * transform, else the first created; NULL when none. */
ck_informer_t *ck_manager_find_informer(ck_manager_t *m, const ck_resource_t *res);
/* Feed an object this process wrote to every informer of res. */
void ck_manager_observe(ck_manager_t *m, const ck_resource_t *res, const json_t *obj);
/* Workers may reconcile (leading, and not past the grace period). */
bool ck_manager_may_reconcile(ck_manager_t *m);

/* Controller lifecycle, driven by the manager. */
int ck_controller_create(ck_manager_t *m, const ck_controller_opts_t *opts, ck_controller_t **out,
                         ck_error_t *err);
void ck_controller_destroy(ck_controller_t *ctl);
int ck_controller_start_workers(ck_controller_t *ctl);
/* Refuse new keys; workers drain what waits. */
void ck_controller_shutdown(ck_controller_t *ctl);
/* Join the workers until deadline_ms (monotonic). true when all joined. */
bool ck_controller_join(ck_controller_t *ctl, int64_t deadline_ms);
/* Queue every cached primary object (resync). */
void ck_controller_resync(ck_controller_t *ctl);
int64_t ck_controller_resync_ms(const ck_controller_t *ctl);

#endif

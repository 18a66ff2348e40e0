/* Helpers of the Go binding: each makes one libpeepool call and copies the
 * thread's last error in the same C call. */
#ifndef PEEPOOL_GO_H
#define PEEPOOL_GO_H
#include <peepool.h>

// The last error is per OS thread and a goroutine may change thread between
// two cgo calls, so every fallible call goes through a helper below that
// makes the call and copies pool_last_error()/pool_last_sqlstate() in the
// same C call (STYLE.md point 13). The message is strdup'ed (Go frees it).
typedef struct {
	char *msg;
	char state[32];
} go_err;

pool_status_t go_new(const char *url, pool_t **out, go_err *e);
pool_status_t go_connect(pool_t *p, pool_conn_t *out, go_err *e);
pool_status_t go_release(pool_t *p, uint64_t id, go_err *e);
pool_status_t go_manual_close(pool_t *p, uint64_t id, go_err *e);
pool_status_t go_close_idle(pool_t *p, size_t *closed, go_err *e);
pool_status_t go_close_stale(pool_t *p, double age, size_t *closed, go_err *e);
pool_status_t go_close_all(pool_t *p, go_err *e);
pool_status_t go_stats(pool_t *p, pool_stats_t *out, go_err *e);
pool_status_t go_execute(uint64_t id, const char *sql, const pool_value_t *params,
                                size_t n, uint64_t *affected, go_err *e);
pool_status_t go_query(uint64_t id, const char *sql, const pool_value_t *params,
                              size_t n, pool_result_t **out, go_err *e);
pool_status_t go_begin(uint64_t id, go_err *e);
pool_status_t go_commit(uint64_t id, go_err *e);
pool_status_t go_rollback(uint64_t id, go_err *e);
pool_status_t go_column_name(const pool_result_t *r, size_t col, const char **out, go_err *e);
pool_status_t go_type(const pool_result_t *r, size_t row, size_t col, uint32_t *out, go_err *e);
pool_status_t go_int64(const pool_result_t *r, size_t row, size_t col, int64_t *out, go_err *e);
pool_status_t go_double(const pool_result_t *r, size_t row, size_t col, double *out, go_err *e);
pool_status_t go_text(const pool_result_t *r, size_t row, size_t col, const char **out,
                             size_t *len, go_err *e);
pool_status_t go_blob(const pool_result_t *r, size_t row, size_t col, const void **out,
                             size_t *len, go_err *e);
pool_status_t go_set_logger(pool_t *p, uintptr_t id, go_err *e);

#endif

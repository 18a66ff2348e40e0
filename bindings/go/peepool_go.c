#include <stdlib.h>
#include <string.h>
#include "peepool_go.h"
#include "_cgo_export.h"

static pool_status_t go_fill(pool_status_t st, go_err *e) {
	if (st != POOL_OK) {
		e->msg = strdup(pool_last_error());
		strncpy(e->state, pool_last_sqlstate(), sizeof e->state - 1);
		e->state[sizeof e->state - 1] = 0;
	}
	return st;
}

pool_status_t go_new(const char *url, pool_t **out, go_err *e) {
	return go_fill(pool_new(url, out), e);
}
pool_status_t go_connect(pool_t *p, pool_conn_t *out, go_err *e) {
	return go_fill(pool_connect(p, out), e);
}
pool_status_t go_release(pool_t *p, uint64_t id, go_err *e) {
	pool_conn_t c = { id };
	return go_fill(pool_release(p, c), e);
}
pool_status_t go_manual_close(pool_t *p, uint64_t id, go_err *e) {
	pool_conn_t c = { id };
	return go_fill(pool_manual_close(p, c), e);
}
pool_status_t go_close_idle(pool_t *p, size_t *closed, go_err *e) {
	return go_fill(pool_close_idle(p, closed), e);
}
pool_status_t go_close_stale(pool_t *p, double age, size_t *closed, go_err *e) {
	return go_fill(pool_close_stale(p, age, closed), e);
}
pool_status_t go_close_all(pool_t *p, go_err *e) {
	return go_fill(pool_close_all(p), e);
}
pool_status_t go_stats(pool_t *p, pool_stats_t *out, go_err *e) {
	return go_fill(pool_stats(p, out), e);
}
pool_status_t go_execute(uint64_t id, const char *sql, const pool_value_t *params,
                                size_t n, uint64_t *affected, go_err *e) {
	pool_conn_t c = { id };
	return go_fill(pool_execute(c, sql, params, n, affected), e);
}
pool_status_t go_query(uint64_t id, const char *sql, const pool_value_t *params,
                              size_t n, pool_result_t **out, go_err *e) {
	pool_conn_t c = { id };
	return go_fill(pool_query(c, sql, params, n, out), e);
}
pool_status_t go_begin(uint64_t id, go_err *e) {
	pool_conn_t c = { id };
	return go_fill(pool_begin(c), e);
}
pool_status_t go_commit(uint64_t id, go_err *e) {
	pool_conn_t c = { id };
	return go_fill(pool_commit(c), e);
}
pool_status_t go_rollback(uint64_t id, go_err *e) {
	pool_conn_t c = { id };
	return go_fill(pool_rollback(c), e);
}
pool_status_t go_column_name(const pool_result_t *r, size_t col, const char **out, go_err *e) {
	return go_fill(pool_result_column_name(r, col, out), e);
}
pool_status_t go_type(const pool_result_t *r, size_t row, size_t col, uint32_t *out, go_err *e) {
	return go_fill(pool_result_type(r, row, col, out), e);
}
pool_status_t go_int64(const pool_result_t *r, size_t row, size_t col, int64_t *out, go_err *e) {
	return go_fill(pool_result_int64(r, row, col, out), e);
}
pool_status_t go_double(const pool_result_t *r, size_t row, size_t col, double *out, go_err *e) {
	return go_fill(pool_result_double(r, row, col, out), e);
}
pool_status_t go_text(const pool_result_t *r, size_t row, size_t col, const char **out,
                             size_t *len, go_err *e) {
	return go_fill(pool_result_text(r, row, col, out, len), e);
}
pool_status_t go_blob(const pool_result_t *r, size_t row, size_t col, const void **out,
                             size_t *len, go_err *e) {
	return go_fill(pool_result_blob(r, row, col, out, len), e);
}

/* The logger's user_data is the Go side's id for the function, not a
 * pointer: Go memory must not be kept by C. */
static void go_log_trampoline(void *user_data, int level, const char *message) {
	peepoolGoLog((uintptr_t)user_data, level, (char *)message);
}
pool_status_t go_set_logger(pool_t *p, uintptr_t id, go_err *e) {
	return go_fill(pool_set_logger(p, id ? go_log_trampoline : NULL, (void *)id), e);
}

package peepool

/*
#include <stdlib.h>
#include <string.h>
#include "peepool_go.h"
*/
import "C"

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"
)

// Conn is a checked-out connection. Give it back with Release (or end it
// with Close); after that every call on it gets ErrInvalidHandle. It may be
// used from any goroutine, one call at a time (a concurrent call gets
// ErrBusy).
//
// Statements are not interrupted by ctx: ctx is checked before the call
// starts. Bound statements on the server (e.g. PostgreSQL statement_timeout).
type Conn struct {
	pool *Pool
	id   uint64
}

// Release gives the connection back to the pool, rolling back an open
// transaction. A second Release gets ErrInvalidHandle.
func (c *Conn) Release() error {
	cp, err := c.pool.enter(false)
	if err != nil {
		return err
	}
	defer c.pool.leave(false)
	var e C.go_err
	return takeErr(C.go_release(cp, C.uint64_t(c.id), &e), &e)
}

// Close closes the connection for good instead of returning it (peewee's
// manual_close); a place is free for a new connection.
func (c *Conn) Close() error {
	cp, err := c.pool.enter(false)
	if err != nil {
		return err
	}
	defer c.pool.leave(false)
	var e C.go_err
	return takeErr(C.go_manual_close(cp, C.uint64_t(c.id), &e), &e)
}

// Exec runs a statement and returns the number of rows it changed.
// Placeholders are the database's own (SQLite ? or $1, PostgreSQL $1,
// MySQL ?). Parameters: nil, bool (as 1/0), every integer kind (uint64
// above MaxInt64 refused), float32/64, string, []byte, time.Time (RFC 3339
// text, nanoseconds kept), *T of these (nil pointer: NULL), and any
// driver.Valuer.
func (c *Conn) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var affected C.uint64_t
	err := c.withStmt(sql, args, func(csql *C.char, params *C.pool_value_t, n C.size_t, e *C.go_err) C.pool_status_t {
		return C.go_execute(C.uint64_t(c.id), csql, params, n, &affected, e)
	})
	if err != nil {
		return 0, err
	}
	return int64(affected), nil
}

// Query runs a statement and returns its rows, all read into memory; the
// *Rows does not hold the connection. Parameters as for Exec.
func (c *Conn) Query(ctx context.Context, sql string, args ...any) (*Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var res *C.pool_result_t
	err := c.withStmt(sql, args, func(csql *C.char, params *C.pool_value_t, n C.size_t, e *C.go_err) C.pool_status_t {
		return C.go_query(C.uint64_t(c.id), csql, params, n, &res, e)
	})
	if err != nil {
		return nil, err
	}
	return newRows(res)
}

// Begin starts a transaction; one still open at Release is rolled back.
func (c *Conn) Begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var e C.go_err
	return takeErr(C.go_begin(C.uint64_t(c.id), &e), &e)
}

// Commit commits the open transaction.
func (c *Conn) Commit() error {
	var e C.go_err
	return takeErr(C.go_commit(C.uint64_t(c.id), &e), &e)
}

// Rollback rolls the open transaction back.
func (c *Conn) Rollback() error {
	var e C.go_err
	return takeErr(C.go_rollback(C.uint64_t(c.id), &e), &e)
}

// withStmt converts sql and args to C memory (cgo forbids passing Go
// memory holding Go pointers), runs call and frees it all.
func (c *Conn) withStmt(sql string, args []any, call func(*C.char, *C.pool_value_t, C.size_t, *C.go_err) C.pool_status_t) error {
	if strings.IndexByte(sql, 0) >= 0 {
		return newError(StatusInvalidArgument, "sql contains a NUL byte")
	}
	csql := C.CString(sql)
	defer C.free(unsafe.Pointer(csql))
	var params *C.pool_value_t
	var allocs []unsafe.Pointer
	defer func() {
		for _, a := range allocs {
			C.free(a)
		}
	}()
	if len(args) > 0 {
		size := C.size_t(len(args)) * C.size_t(unsafe.Sizeof(C.pool_value_t{}))
		mem := C.malloc(size)
		allocs = append(allocs, mem)
		C.memset(mem, 0, size)
		params = (*C.pool_value_t)(mem)
		vals := unsafe.Slice(params, len(args))
		for i, a := range args {
			if err := setParam(&vals[i], a, i+1, &allocs); err != nil {
				return err
			}
		}
	}
	var e C.go_err
	return takeErr(call(csql, params, C.size_t(len(args)), &e), &e)
}

func setBytes(v *C.pool_value_t, kind C.uint32_t, b []byte, allocs *[]unsafe.Pointer) {
	v._type = kind
	v.len = C.size_t(len(b))
	if len(b) > 0 {
		p := C.CBytes(b)
		*allocs = append(*allocs, p)
		v.data = p
	}
}

func setParam(v *C.pool_value_t, a any, n int, allocs *[]unsafe.Pointer) error {
	setInt := func(i int64) { v._type = C.POOL_TYPE_INT64; v.i64 = C.int64_t(i) }
	setUint := func(u uint64) error {
		if u > math.MaxInt64 {
			return newError(StatusInvalidArgument, fmt.Sprintf("parameter %d: %d does not fit in int64", n, u))
		}
		setInt(int64(u))
		return nil
	}
	switch x := a.(type) {
	case nil:
		v._type = C.POOL_TYPE_NULL
	case bool:
		if x {
			setInt(1)
		} else {
			setInt(0)
		}
	case int:
		setInt(int64(x))
	case int8:
		setInt(int64(x))
	case int16:
		setInt(int64(x))
	case int32:
		setInt(int64(x))
	case int64:
		setInt(x)
	case uint:
		return setUint(uint64(x))
	case uint8:
		setInt(int64(x))
	case uint16:
		setInt(int64(x))
	case uint32:
		setInt(int64(x))
	case uint64:
		return setUint(x)
	case float32:
		v._type = C.POOL_TYPE_DOUBLE
		v.f64 = C.double(x)
	case float64:
		v._type = C.POOL_TYPE_DOUBLE
		v.f64 = C.double(x)
	case string:
		setBytes(v, C.POOL_TYPE_TEXT, []byte(x), allocs)
	case []byte:
		if x == nil {
			v._type = C.POOL_TYPE_NULL
		} else {
			setBytes(v, C.POOL_TYPE_BLOB, x, allocs)
		}
	case time.Time:
		setBytes(v, C.POOL_TYPE_TEXT, []byte(x.Format(time.RFC3339Nano)), allocs)
	case driver.Valuer:
		val, err := x.Value()
		if err != nil {
			return newError(StatusInvalidArgument, fmt.Sprintf("parameter %d: %v", n, err))
		}
		if _, again := val.(driver.Valuer); again {
			return newError(StatusInvalidArgument, fmt.Sprintf("parameter %d: Value returned a Valuer", n))
		}
		return setParam(v, val, n, allocs)
	default:
		if p, ok := deref(a); ok {
			return setParam(v, p, n, allocs)
		}
		return newError(StatusInvalidArgument, fmt.Sprintf("parameter %d: unsupported type %T", n, a))
	}
	return nil
}

// deref follows a pointer to a supported parameter type; a nil one is NULL.
func deref(a any) (any, bool) {
	switch x := a.(type) {
	case *bool:
		return ptrVal(x), true
	case *int:
		return ptrVal(x), true
	case *int8:
		return ptrVal(x), true
	case *int16:
		return ptrVal(x), true
	case *int32:
		return ptrVal(x), true
	case *int64:
		return ptrVal(x), true
	case *uint:
		return ptrVal(x), true
	case *uint8:
		return ptrVal(x), true
	case *uint16:
		return ptrVal(x), true
	case *uint32:
		return ptrVal(x), true
	case *uint64:
		return ptrVal(x), true
	case *float32:
		return ptrVal(x), true
	case *float64:
		return ptrVal(x), true
	case *string:
		return ptrVal(x), true
	case *[]byte:
		return ptrVal(x), true
	case *time.Time:
		return ptrVal(x), true
	}
	return nil, false
}

func ptrVal[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

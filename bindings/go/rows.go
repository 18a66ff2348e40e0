package peepool

/*
#include "peepool_go.h"
*/
import "C"

import (
	"database/sql"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// Rows is the materialised result of Query. It is independent of the
// connection and the pool. Read it with Next and Scan, then Close it (a
// finalizer frees one that is forgotten). Not for concurrent use.
type Rows struct {
	res     *C.pool_result_t
	nrows   int
	cols    []string
	row     int // the current row; -1 before the first Next
	closed  bool
	lastErr error
}

func newRows(res *C.pool_result_t) (*Rows, error) {
	r := &Rows{res: res, nrows: int(C.pool_result_rows(res)), row: -1}
	ncols := int(C.pool_result_columns(res))
	r.cols = make([]string, ncols)
	for i := range r.cols {
		var name *C.char
		var e C.go_err
		if err := takeErr(C.go_column_name(res, C.size_t(i), &name, &e), &e); err != nil {
			C.pool_result_free(res)
			return nil, err
		}
		r.cols[i] = C.GoString(name)
	}
	runtime.SetFinalizer(r, (*Rows).Close)
	return r, nil
}

// Columns returns the column names.
func (r *Rows) Columns() []string { return append([]string(nil), r.cols...) }

// Len is the number of rows.
func (r *Rows) Len() int { return r.nrows }

// Next moves to the next row; false when there is none (the rows are then
// closed).
func (r *Rows) Next() bool {
	if r.closed {
		return false
	}
	r.row++
	if r.row >= r.nrows {
		r.Close()
		return false
	}
	return true
}

// Err is the error that ended the iteration early, if any (a Scan error).
func (r *Rows) Err() error { return r.lastErr }

// Close frees the result. Safe to call more than once.
func (r *Rows) Close() error {
	if !r.closed {
		r.closed = true
		C.pool_result_free(r.res)
		r.res = nil
		runtime.SetFinalizer(r, nil)
	}
	return nil
}

// Scan copies the current row into dest, one per column. Supported
// destinations: *int64, *int, *int32, *float64, *string, *[]byte (a copy),
// *bool (integers, or text such as t/f/true/false/1/0), *any (nil, int64,
// float64, string or []byte by the cell's kind; NUMERIC and other types come
// as string), **T of these (nil for NULL), and any sql.Scanner such as
// sql.NullString or sql.NullInt64. NULL into a non-nullable destination is
// ErrConversion.
func (r *Rows) Scan(dest ...any) error {
	if r.closed || r.row < 0 || r.row >= r.nrows {
		return newError(StatusInvalidArgument, "Scan called without a current row (call Next first)")
	}
	if len(dest) != len(r.cols) {
		return newError(StatusInvalidArgument, fmt.Sprintf("Scan: %d destinations for %d columns", len(dest), len(r.cols)))
	}
	for i, d := range dest {
		if err := r.scanCell(i, d); err != nil {
			r.lastErr = err
			return err
		}
	}
	return nil
}

func (r *Rows) kind(col int) (uint32, error) {
	var t C.uint32_t
	var e C.go_err
	if err := takeErr(C.go_type(r.res, C.size_t(r.row), C.size_t(col), &t, &e), &e); err != nil {
		return 0, err
	}
	return uint32(t), nil
}

func (r *Rows) int64At(col int) (int64, error) {
	var v C.int64_t
	var e C.go_err
	err := takeErr(C.go_int64(r.res, C.size_t(r.row), C.size_t(col), &v, &e), &e)
	return int64(v), r.named(col, err)
}

func (r *Rows) float64At(col int) (float64, error) {
	var v C.double
	var e C.go_err
	err := takeErr(C.go_double(r.res, C.size_t(r.row), C.size_t(col), &v, &e), &e)
	return float64(v), r.named(col, err)
}

func (r *Rows) stringAt(col int) (string, error) {
	var p *C.char
	var n C.size_t
	var e C.go_err
	if err := takeErr(C.go_text(r.res, C.size_t(r.row), C.size_t(col), &p, &n, &e), &e); err != nil {
		return "", r.named(col, err)
	}
	return C.GoStringN(p, C.int(n)), nil
}

func (r *Rows) bytesAt(col int) ([]byte, error) {
	var p unsafe.Pointer
	var n C.size_t
	var e C.go_err
	if err := takeErr(C.go_blob(r.res, C.size_t(r.row), C.size_t(col), &p, &n, &e), &e); err != nil {
		return nil, r.named(col, err)
	}
	if n == 0 {
		return []byte{}, nil
	}
	return C.GoBytes(p, C.int(n)), nil
}

// named prefixes the column name to a conversion error.
func (r *Rows) named(col int, err error) error {
	if e, ok := err.(*Error); ok {
		e.Message = fmt.Sprintf("column %d (%s): %s", col+1, r.cols[col], e.Message)
	}
	return err
}

// value is the cell as a Go value by its kind.
func (r *Rows) value(col int) (any, error) {
	k, err := r.kind(col)
	if err != nil {
		return nil, err
	}
	switch k {
	case C.POOL_TYPE_NULL:
		return nil, nil
	case C.POOL_TYPE_INT64:
		return r.int64At(col)
	case C.POOL_TYPE_DOUBLE:
		return r.float64At(col)
	case C.POOL_TYPE_BLOB:
		return r.bytesAt(col)
	default:
		return r.stringAt(col)
	}
}

func (r *Rows) isNull(col int) (bool, error) {
	k, err := r.kind(col)
	return k == C.POOL_TYPE_NULL, err
}

func (r *Rows) boolAt(col int) (bool, error) {
	k, err := r.kind(col)
	if err != nil {
		return false, err
	}
	if k == C.POOL_TYPE_INT64 {
		i, err := r.int64At(col)
		return i != 0, err
	}
	s, err := r.stringAt(col)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "t", "true", "1", "y", "yes", "on":
		return true, nil
	case "f", "false", "0", "n", "no", "off":
		return false, nil
	}
	return false, r.named(col, newError(StatusConversion, strconv.Quote(s)+" is not a boolean"))
}

func (r *Rows) scanCell(col int, d any) error {
	switch p := d.(type) {
	case *any:
		v, err := r.value(col)
		*p = v
		return err
	case *int64:
		v, err := r.int64At(col)
		*p = v
		return err
	case *int:
		v, err := r.int64At(col)
		if err == nil && int64(int(v)) != v {
			return r.named(col, newError(StatusConversion, fmt.Sprintf("%d does not fit in int", v)))
		}
		*p = int(v)
		return err
	case *int32:
		v, err := r.int64At(col)
		if err == nil && int64(int32(v)) != v {
			return r.named(col, newError(StatusConversion, fmt.Sprintf("%d does not fit in int32", v)))
		}
		*p = int32(v)
		return err
	case *float64:
		v, err := r.float64At(col)
		*p = v
		return err
	case *string:
		v, err := r.stringAt(col)
		*p = v
		return err
	case *[]byte:
		v, err := r.bytesAt(col)
		*p = v
		return err
	case *bool:
		v, err := r.boolAt(col)
		*p = v
		return err
	case sql.Scanner:
		v, err := r.value(col)
		if err != nil {
			return err
		}
		if err := p.Scan(v); err != nil {
			return r.named(col, newError(StatusConversion, err.Error()))
		}
		return nil
	case **int64:
		return scanPtr(r, col, p, r.int64At)
	case **int:
		return scanPtr(r, col, p, func(c int) (int, error) { var v int; err := r.scanCell(c, &v); return v, err })
	case **float64:
		return scanPtr(r, col, p, r.float64At)
	case **string:
		return scanPtr(r, col, p, r.stringAt)
	case **[]byte:
		return scanPtr(r, col, p, r.bytesAt)
	case **bool:
		return scanPtr(r, col, p, r.boolAt)
	}
	return r.named(col, newError(StatusInvalidArgument, fmt.Sprintf("unsupported Scan destination %T", d)))
}

// scanPtr sets *p to nil for NULL, else to a new value read by get.
func scanPtr[T any](r *Rows, col int, p **T, get func(int) (T, error)) error {
	null, err := r.isNull(col)
	if err != nil {
		return err
	}
	if null {
		*p = nil
		return nil
	}
	v, err := get(col)
	if err != nil {
		return err
	}
	*p = &v
	return nil
}

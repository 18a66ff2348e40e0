// Package peepool is the Go binding of libpeepool, a database connection
// pool for SQLite, PostgreSQL and MySQL/MariaDB with peewee's semantics.
//
// A *Pool and its *Conn values may be used from any number of goroutines; a
// connection runs one call at a time (a concurrent call on the same *Conn
// gets ErrBusy). Every error is an *Error carrying the status code, the
// SQLSTATE and the message of the failed call.
//
// The per-thread connection mode of the C API (pool_thread_connect) is not
// exposed: goroutines are not OS threads and move between them, so "the
// calling thread's connection" has no meaning in Go. Hold a *Conn instead.
package peepool

/*
#include <stdlib.h>
#include "peepool_go.h"
*/
import "C"

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Pool is a connection pool. Close it when done.
type Pool struct {
	mu     sync.Mutex
	p      *C.pool_t
	closed bool
	calls  int     // calls on p in flight other than pool_connect
	waits  int     // pool_connect calls in flight (they may block in the C wait)
	cwait  bool    // the URL sets a C-level wait (timeout > 0 or inf)
	logger uintptr // id of the Go logger set with SetLogger, 0 if none
}

// Open creates a pool from a URL such as "sqlite::memory:",
// "postgres://user@host/db?max_connections=8&timeout=5" or
// "mysql://root@127.0.0.1:3306/test". Pool options travel in the query
// string (see the README). No connection is opened yet.
func Open(rawURL string) (*Pool, error) {
	if strings.IndexByte(rawURL, 0) >= 0 {
		return nil, newError(StatusInvalidArgument, "url contains a NUL byte")
	}
	curl := C.CString(rawURL)
	defer C.free(unsafe.Pointer(curl))
	var p *C.pool_t
	var e C.go_err
	if err := takeErr(C.go_new(curl, &p, &e), &e); err != nil {
		return nil, err
	}
	return &Pool{p: p, cwait: urlWaits(rawURL)}, nil
}

// urlWaits reports whether the URL's timeout option makes pool_connect wait
// (absent or 0: it fails at once). pool_new has already validated it.
func urlWaits(rawURL string) bool {
	_, q, ok := strings.Cut(rawURL, "?")
	if !ok {
		return false
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return false
	}
	t := vals.Get("timeout")
	if t == "" {
		return false
	}
	f, err := strconv.ParseFloat(t, 64)
	return err != nil || f > 0 // "inf" parses; anything else pool_new took is a wait
}

// enter marks a call on the C pool in flight so that Close does not free the
// pool under it; leave ends it.
func (p *Pool) enter(connect bool) (*C.pool_t, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, newError(StatusClosed, "the pool is closed")
	}
	if connect {
		p.waits++
	} else {
		p.calls++
	}
	return p.p, nil
}

func (p *Pool) leave(connect bool) {
	p.mu.Lock()
	if connect {
		p.waits--
	} else {
		p.calls--
	}
	p.mu.Unlock()
}

// connectC is one pool_connect.
func (p *Pool) connectC() (uint64, error) {
	cp, err := p.enter(true)
	if err != nil {
		return 0, err
	}
	defer p.leave(true)
	var out C.pool_conn_t
	var e C.go_err
	if err := takeErr(C.go_connect(cp, &out, &e), &e); err != nil {
		return 0, err
	}
	return uint64(out.id), nil
}

func ctxError(err error) error {
	return &Error{Status: StatusExhausted, Message: "no connection before the context ended: " + err.Error(), cause: err}
}

// Conn checks a connection out: an idle one or a new one while fewer than
// max_connections are open. When none is free:
//
//   - URL without timeout (or timeout=0): with a ctx that can end, Conn
//     retries with a backoff from 1 ms to 50 ms until a connection is free or
//     ctx ends; with a ctx that never ends (context.Background) it fails at
//     once with ErrExhausted, as pool_connect does. Retries are not FIFO-fair.
//   - URL with timeout=N (or inf): the library waits, FIFO-fair, up to N
//     seconds, then ErrExhausted. A ctx that ends sooner ends the wait: Conn
//     returns at once, and a connection that arrives for the abandoned wait
//     later is released back to the pool.
//
// When ctx ends first the error is an *Error with StatusExhausted for which
// errors.Is(err, ctx.Err()) also holds (context.DeadlineExceeded or
// context.Canceled). Opening a new connection is bounded by connect_timeout,
// not by ctx.
func (p *Pool) Conn(ctx context.Context) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(err)
	}
	backoff := time.Millisecond
	for {
		id, err := p.connectOnce(ctx)
		if err == nil {
			return &Conn{pool: p, id: id}, nil
		}
		if p.cwait || ctx.Done() == nil || !isStatus(err, StatusExhausted) {
			return nil, err
		}
		if e, ok := err.(*Error); ok && e.cause != nil {
			return nil, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctxError(ctx.Err())
		case <-t.C:
		}
		if backoff *= 2; backoff > 50*time.Millisecond {
			backoff = 50 * time.Millisecond
		}
	}
}

func isStatus(err error, st Status) bool {
	e, ok := err.(*Error)
	return ok && e.Status == st
}

// connectOnce is one checkout attempt; with a C-level wait and a ctx that can
// end, the blocking call runs in its own goroutine so that ctx can cut it
// short.
func (p *Pool) connectOnce(ctx context.Context) (uint64, error) {
	if !p.cwait || ctx.Done() == nil {
		return p.connectC()
	}
	type result struct {
		id  uint64
		err error
	}
	ch := make(chan result, 1)
	go func() {
		id, err := p.connectC()
		ch <- result{id, err}
	}()
	select {
	case r := <-ch:
		return r.id, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				_ = (&Conn{pool: p, id: r.id}).Release()
			}
		}()
		return 0, ctxError(ctx.Err())
	}
}

// Stats is a snapshot of the pool's gauges and counters (see pool_stats_t).
type Stats struct {
	MaxConnections  uint64 // 0 = unlimited
	Open            uint64 // idle + in use + condemned
	Idle            uint64
	InUse           uint64
	Waiting         uint64 // calls waiting in the library's FIFO wait
	OpenedTotal     uint64
	ClosedTotal     uint64
	ClosedStale     uint64
	ClosedIdle      uint64
	ClosedDead      uint64
	ClosedManual    uint64
	ClosedReclaimed uint64
	ClosedCleared   uint64
	Checkouts       uint64
	Timeouts        uint64
	WaitTotal       time.Duration // time spent waiting, timed-out waits included
	Leaks           uint64
}

// Stats returns the pool's counters; the zero Stats once the pool is closed.
func (p *Pool) Stats() Stats {
	cp, err := p.enter(false)
	if err != nil {
		return Stats{}
	}
	defer p.leave(false)
	return statsC(cp)
}

func statsC(cp *C.pool_t) Stats {
	var s C.pool_stats_t
	var e C.go_err
	if takeErr(C.go_stats(cp, &s, &e), &e) != nil {
		return Stats{}
	}
	return Stats{
		MaxConnections: uint64(s.max_connections), Open: uint64(s.open), Idle: uint64(s.idle),
		InUse: uint64(s.in_use), Waiting: uint64(s.waiting), OpenedTotal: uint64(s.opened_total),
		ClosedTotal: uint64(s.closed_total), ClosedStale: uint64(s.closed_stale),
		ClosedIdle: uint64(s.closed_idle), ClosedDead: uint64(s.closed_dead),
		ClosedManual: uint64(s.closed_manual), ClosedReclaimed: uint64(s.closed_reclaimed),
		ClosedCleared: uint64(s.closed_cleared), Checkouts: uint64(s.checkouts),
		Timeouts: uint64(s.timeouts), WaitTotal: time.Duration(s.wait_us_total) * time.Microsecond,
		Leaks: uint64(s.leaks),
	}
}

// CloseIdle closes every idle connection and says how many it closed.
func (p *Pool) CloseIdle() (int, error) {
	cp, err := p.enter(false)
	if err != nil {
		return 0, err
	}
	defer p.leave(false)
	var n C.size_t
	var e C.go_err
	if err := takeErr(C.go_close_idle(cp, &n, &e), &e); err != nil {
		return 0, err
	}
	return int(n), nil
}

// CloseStale reclaims connections checked out for longer than age: each is
// closed and its *Conn gets ErrInvalidHandle afterwards.
func (p *Pool) CloseStale(age time.Duration) (int, error) {
	cp, err := p.enter(false)
	if err != nil {
		return 0, err
	}
	defer p.leave(false)
	var n C.size_t
	var e C.go_err
	if err := takeErr(C.go_close_stale(cp, C.double(age.Seconds()), &n, &e), &e); err != nil {
		return 0, err
	}
	return int(n), nil
}

// CloseAll closes idle connections now and checked-out ones when they are
// released. The pool stays usable.
func (p *Pool) CloseAll() error {
	cp, err := p.enter(false)
	if err != nil {
		return err
	}
	defer p.leave(false)
	var e C.go_err
	return takeErr(C.go_close_all(cp, &e), &e)
}

// Close frees the pool (pool_free): goroutines waiting in Conn get
// ErrClosed, connections still checked out are revoked (their calls get
// ErrInvalidHandle). Later calls on the pool get ErrClosed; a second Close
// returns nil.
//
// pool_free must not race with a call that is starting on the pool, so Close
// first refuses new calls, then waits for the calls in flight: all of them
// except pool_connect calls already parked in the library's wait, which
// pool_free wakes.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	cp := p.p
	for {
		if p.calls == 0 && (p.waits == 0 || statsC(cp).Waiting >= uint64(p.waits)) {
			break
		}
		p.mu.Unlock()
		time.Sleep(time.Millisecond)
		p.mu.Lock()
	}
	p.p = nil
	logger := p.logger
	p.logger = 0
	p.mu.Unlock()
	C.pool_free(cp)
	if logger != 0 {
		loggers.Delete(logger)
	}
	return nil
}

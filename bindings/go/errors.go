package peepool

// #include <peepool.h>
import "C"

import "errors"

// Status is a pool_status_t code. Each non-OK status is itself an error, so
// errors.Is(err, peepool.ErrExhausted) tells which status an *Error carries.
type Status int

// The pool_status_t codes.
const (
	StatusOK              Status = C.POOL_OK
	StatusInvalidArgument Status = C.POOL_ERR_INVALID_ARGUMENT
	StatusConfig          Status = C.POOL_ERR_CONFIG
	StatusConnect         Status = C.POOL_ERR_CONNECT
	StatusExhausted       Status = C.POOL_ERR_EXHAUSTED
	StatusInvalidHandle   Status = C.POOL_ERR_INVALID_HANDLE
	StatusBusy            Status = C.POOL_ERR_BUSY
	StatusDatabase        Status = C.POOL_ERR_DATABASE
	StatusConversion      Status = C.POOL_ERR_CONVERSION
	StatusClosed          Status = C.POOL_ERR_CLOSED
	StatusInternal        Status = C.POOL_ERR_INTERNAL
)

// Sentinels for errors.Is: every *Error unwraps to its Status.
var (
	ErrInvalidArgument error = StatusInvalidArgument
	ErrConfig          error = StatusConfig
	ErrConnect         error = StatusConnect
	ErrExhausted       error = StatusExhausted
	ErrInvalidHandle   error = StatusInvalidHandle
	ErrBusy            error = StatusBusy
	ErrDatabase        error = StatusDatabase
	ErrConversion      error = StatusConversion
	ErrClosed          error = StatusClosed
	ErrInternal        error = StatusInternal
)

// String is the library's name and description of the code, e.g.
// "POOL_ERR_EXHAUSTED: pool exhausted".
func (s Status) String() string { return C.GoString(C.pool_status_str(C.int(s))) }

// Error makes a Status usable as a sentinel error.
func (s Status) Error() string { return "peepool: " + s.String() }

// Error is what every failing call returns: the status code, the SQLSTATE
// of a database error (PostgreSQL/MySQL five characters, SQLite its
// extended result code, "" otherwise) and the library's message, all read
// in the same C call as the failed operation.
type Error struct {
	Status   Status
	SQLState string
	Message  string

	cause error // a context error that ended a wait, if any
}

func (e *Error) Error() string {
	s := "peepool: " + e.Status.String()
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.SQLState != "" {
		s += " (SQLSTATE " + e.SQLState + ")"
	}
	return s
}

// Unwrap gives the Status, so errors.Is(err, ErrExhausted) works.
func (e *Error) Unwrap() error { return e.Status }

// Is matches the context error that ended a wait (context.Canceled or
// context.DeadlineExceeded), besides the Status matched through Unwrap.
func (e *Error) Is(target error) bool {
	return e.cause != nil && errors.Is(e.cause, target)
}

func newError(st Status, msg string) *Error { return &Error{Status: st, Message: msg} }

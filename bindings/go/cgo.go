package peepool

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -lpeepool -Wl,-rpath,${SRCDIR}/../../target/release
#include <stdlib.h>
#include "peepool_go.h"
*/
import "C"

import "unsafe"

// takeErr turns a failed status and its copied message into an *Error,
// freeing the C copy of the message.
func takeErr(st C.pool_status_t, e *C.go_err) error {
	if st == C.POOL_OK {
		return nil
	}
	msg := ""
	if e.msg != nil {
		msg = C.GoString(e.msg)
		C.free(unsafe.Pointer(e.msg))
		e.msg = nil
	}
	return &Error{Status: Status(st), SQLState: C.GoString(&e.state[0]), Message: msg}
}

// Version is the version of the loaded libpeepool, e.g. "0.1.0".
func Version() string { return C.GoString(C.pool_version()) }

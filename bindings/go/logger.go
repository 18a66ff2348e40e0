package peepool

/*
#include <stdint.h>
#include "peepool_go.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
)

// LogLevel is the level of a log line (POOL_LOG_*).
type LogLevel int

const (
	LogError LogLevel = 1 // errors
	LogWarn  LogLevel = 2 // a leaked connection, a dead connection evicted
	LogInfo  LogLevel = 3 // notable pool-wide events
	LogDebug LogLevel = 4 // connections opened, reused, returned and closed
)

func (l LogLevel) String() string {
	switch l {
	case LogError:
		return "error"
	case LogWarn:
		return "warn"
	case LogInfo:
		return "info"
	case LogDebug:
		return "debug"
	}
	return "unknown"
}

// loggers maps the id passed to the library as user_data to the Go
// function. The library may still be running a call to a logger when
// pool_set_logger replaces it (and its maintenance thread may log while
// pool_free returns), so a removed id must not fail: the trampoline drops
// lines whose id is gone instead of dereferencing anything.
var (
	loggers      sync.Map // uintptr -> func(LogLevel, string)
	nextLoggerID atomic.Uintptr
)

//export peepoolGoLog
func peepoolGoLog(id C.uintptr_t, level C.int, msg *C.char) {
	if f, ok := loggers.Load(uintptr(id)); ok {
		f.(func(LogLevel, string))(LogLevel(level), C.GoString(msg))
	}
}

// SetLogger sends the pool's log lines to fn instead of stderr (nil goes
// back to stderr, as the PEEPOOL_LOG environment variable says). fn may be
// called from any goroutine or thread, the pool's maintenance thread
// included, and from several at once; it must not call back into this
// pool. The message is a copy fn may keep.
func (p *Pool) SetLogger(fn func(level LogLevel, message string)) error {
	cp, err := p.enter(false)
	if err != nil {
		return err
	}
	defer p.leave(false)
	var id uintptr
	if fn != nil {
		id = nextLoggerID.Add(1)
		loggers.Store(id, fn)
	}
	var e C.go_err
	if err := takeErr(C.go_set_logger(cp, C.uintptr_t(id), &e), &e); err != nil {
		if id != 0 {
			loggers.Delete(id)
		}
		return err
	}
	p.mu.Lock()
	old := p.logger
	p.logger = id
	p.mu.Unlock()
	if old != 0 {
		loggers.Delete(old)
	}
	return nil
}

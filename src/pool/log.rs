//! The pool's log: a callback set with `set_logger`, or `PEEPOOL_LOG` on
//! stderr. The enabled level is an atomic read before any formatting, so a
//! disabled level costs one load on the hot path.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// Severity of a log message; the numbers are the C ABI's `POOL_LOG_*`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }

    /// `PEEPOOL_LOG`'s spelling of a level (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// A log callback: gets every message (all levels) while set.
pub type Logger = Arc<dyn Fn(Level, &str) + Send + Sync>;

pub(crate) struct Log {
    /// Highest enabled level as a number; 0 = nothing.
    max: AtomicU8,
    /// The level `PEEPOOL_LOG` asked for when the pool was made (0 = off).
    env: u8,
    logger: RwLock<Option<Logger>>,
}

impl Log {
    pub(crate) fn from_env() -> Log {
        let env = std::env::var("PEEPOOL_LOG")
            .ok()
            .and_then(|v| Level::parse(&v))
            .map_or(0, |l| l as u8);
        Log {
            max: AtomicU8::new(env),
            env,
            logger: RwLock::new(None),
        }
    }

    /// Replace the logger. Returns once no call of the old one is in
    /// flight: a C caller may free the old callback's `user_data` then.
    pub(crate) fn set_logger(&self, logger: Option<Logger>) {
        let max = if logger.is_some() {
            Level::Debug as u8
        } else {
            self.env
        };
        *self.logger.write() = logger;
        self.max.store(max, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn enabled(&self, level: Level) -> bool {
        level as u8 <= self.max.load(Ordering::Relaxed)
    }

    /// Write a message; call only after `enabled`, never under the pool's lock.
    /// The logger's read lock is held during the call, so that `set_logger`
    /// waits for calls in flight instead of returning while the old logger
    /// still runs.
    pub(crate) fn write(&self, level: Level, args: fmt::Arguments<'_>) {
        let logger = self.logger.read();
        match logger.as_ref() {
            Some(f) => {
                let msg = args.to_string();
                // A panicking user callback must not take the pool down.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(level, &msg)));
            }
            None => {
                if level as u8 <= self.env {
                    eprintln!("peepool: {}: {}", level.name(), args);
                }
            }
        }
    }
}

/// `plog!(log, Level::Debug, "fmt", args..)`: formats only when enabled.
macro_rules! plog {
    ($log:expr, $level:expr, $($arg:tt)+) => {{
        let log: &$crate::pool::log::Log = &$log;
        if log.enabled($level) {
            log.write($level, format_args!($($arg)+));
        }
    }};
}
pub(crate) use plog;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A logger removed while one of its calls runs is not called after the
    /// removal returns: `set_logger` waits for the call to end.
    #[test]
    fn set_logger_waits_for_calls_in_flight() {
        let log = Arc::new(Log::from_env());
        let finished = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered_rx) = mpsc::channel();
        let done = Arc::clone(&finished);
        let entered = std::sync::Mutex::new(entered_tx);
        log.set_logger(Some(Arc::new(move |_, _| {
            let _ = entered.lock().map(|tx| tx.send(()));
            // Long enough for `set_logger(None)` below to be called.
            std::thread::sleep(Duration::from_millis(100));
            done.store(true, Ordering::SeqCst);
        })));
        let writer = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.write(Level::Debug, format_args!("in flight")))
        };
        entered_rx.recv().unwrap();
        log.set_logger(None);
        assert!(
            finished.load(Ordering::SeqCst),
            "set_logger returned while the old logger was still running"
        );
        writer.join().unwrap();
    }
}

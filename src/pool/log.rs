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
    pub(crate) fn write(&self, level: Level, args: fmt::Arguments<'_>) {
        let logger = self.logger.read().clone();
        match logger {
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

//! Minimal leveled logging to stderr that cooperates with progress bars.
//!
//! Levels: 0 = quiet (errors only), 1 = normal, 2 = verbose (`-v`), 3+ = debug (`-vv`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(1);
static BARS: Mutex<Option<indicatif::MultiProgress>> = Mutex::new(None);

/// Sets the verbosity level.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// The verbosity level.
pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Routes log lines above these progress bars while they are shown.
pub fn set_bars(bars: Option<indicatif::MultiProgress>) {
    *BARS.lock().unwrap_or_else(|e| e.into_inner()) = bars;
}

fn emit(line: &str) {
    let bars = BARS.lock().unwrap_or_else(|e| e.into_inner());
    match bars.as_ref() {
        Some(mp) if !mp.is_hidden() => {
            let _ = mp.println(line);
        }
        _ => eprintln!("{line}"),
    }
}

/// Always printed.
pub fn error(msg: &str) {
    emit(&format!("error: {msg}"));
}

/// Printed unless quiet.
pub fn warn(msg: &str) {
    if level() >= 1 {
        emit(&format!("warning: {msg}"));
    }
}

/// Printed unless quiet.
pub fn info(msg: &str) {
    if level() >= 1 {
        emit(msg);
    }
}

/// Printed with `-v`.
pub fn verbose(msg: &str) {
    if level() >= 2 {
        emit(msg);
    }
}

/// Printed with `-vv`.
pub fn debug(msg: &str) {
    if level() >= 3 {
        emit(msg);
    }
}

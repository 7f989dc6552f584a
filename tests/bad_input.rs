//! A catalogue of bad inputs, as a new user would meet them: bad settings, damaged catalogs
//! and stores, odd trees, signals, a full disk, a restore target that is a file, a first run,
//! and endpoints that refuse, hang or answer garbage. Each case checks the exit code, one
//! clear line on stderr, and that nothing was lost: the next good sync and restore give the
//! tree back (or, for a damaged store, every file but the damaged one, which is named).

#[path = "integration/common.rs"]
mod common;

mod bad_input {
    mod catalog;
    mod endpoints;
    pub mod helpers;
    mod settings;
    mod signals_and_disk;
    mod store;
    mod trees;
}

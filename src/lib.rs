//! glaciersync: back up directory trees to cold storage and bring them back.
//!
//! Layers, lowest first: [`hash`]; [`catalog`] and [`backend`], which know nothing of each
//! other; [`settings`], which builds backend options (`backend::aws`) and uses the backends'
//! naming rules; [`sync`], [`restore`], [`prune`] and [`owner`], which join a catalog and a
//! backend; [`commands`], which join all of them for the CLI.

pub mod backend;
pub mod catalog;
pub mod commands;
pub mod cost;
pub mod error;
pub mod hash;
pub mod interrupt;
pub mod legacy;
pub mod log;
pub mod owner;
pub mod private;
pub mod progress;
pub mod prune;
pub mod report;
pub mod restore;
pub mod scan;
pub mod select;
pub mod settings;
pub mod sync;
pub mod timespec;
pub mod units;
pub mod zst;

pub use error::{Error, Result};

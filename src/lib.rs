//! glaciersync: back up directory trees to cold storage and bring them back.
//!
//! Layers, lowest first: [`hash`], [`settings`], [`catalog`] and [`backend`] know nothing of
//! each other; [`sync`], [`restore`] and [`commands`] combine them.

pub mod backend;
pub mod catalog;
pub mod commands;
pub mod cost;
pub mod error;
pub mod hash;
pub mod log;
pub mod progress;
pub mod restore;
pub mod scan;
pub mod select;
pub mod settings;
pub mod sync;
pub mod timespec;

pub use error::{Error, Result};

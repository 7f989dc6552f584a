//! glaciersync: back up directory trees to cold storage and bring them back.
//!
//! Layers, lowest first: [`hash`], [`settings`], [`catalog`] and [`backend`] know nothing of
//! each other; the commands combine them.

pub mod backend;
pub mod error;
pub mod hash;
pub mod log;
pub mod settings;

pub use error::{Error, Result};

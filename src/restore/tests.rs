//! Plans tested without backend I/O.

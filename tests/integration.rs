//! End-to-end tests of the core engine: each drives the real `glaciersync` binary against a
//! local backend in a temporary directory. One test binary; fixtures live in `common`.

mod integration {
    mod common;
    mod crash;
    mod delta;
    mod encryption;
    mod lock;
    mod permissions;
    mod prune;
    mod restore;
    mod settings;
    mod sync;
}

//! What every case ends with: a good sync, and a restore equal to the tree.

use crate::common::*;
use std::path::{Path, PathBuf};

/// A fixture with a few files in each tree: small ones (bundled) and one of 2 MiB (its own
/// archive, over the 1 MiB threshold).
pub fn fixture() -> Fixture {
    let f = Fixture::new();
    fill(&f);
    f
}

pub fn fill(f: &Fixture) {
    for i in 0..5 {
        f.write(format!("src/dir/{i}.txt"), format!("file {i}\n").as_bytes());
    }
    f.write("src/large.bin", &Rng::new(7).bytes(2 << 20));
    f.write("src2/other.txt", b"the second tree\n");
}

/// A directory under the fixture that does not exist yet.
pub fn fresh(f: &Fixture, name: &str) -> PathBuf {
    let mut n = 0;
    loop {
        let p = f.p(format!("{name}{n}"));
        if !p.exists() {
            return p;
        }
        n += 1;
    }
}

/// Nothing lost: a good sync exits 0 without errors, and a restore into a new directory gives
/// back both trees as they are.
#[track_caller]
pub fn nothing_lost(f: &Fixture) {
    f.sync();
    let out = fresh(f, "restored");
    f.restore(&out, &[]).expect(0);
    assert_same_tree(&f.p("src"), &out.join("path"));
    assert_same_tree(&f.p("src2"), &out.join("path2"));
}

/// The one line on stderr of a run that must exit `code`; it must contain every one of `words`.
#[track_caller]
pub fn one_line(r: &Run, code: i32, words: &[&str]) -> String {
    r.expect(code);
    let line = r.one_stderr_line().to_string();
    for w in words {
        assert!(line.contains(w), "{w:?} not in: {line}");
    }
    line
}

/// Whether the tests run as root (mount, and permission bits that do not bind root).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Allocated 512-byte blocks of a file.
pub fn blocks(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().blocks()
}

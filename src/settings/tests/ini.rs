//! The file format: delimiters, comments, line ends, continuation lines, duplicates.

use super::*;

#[test]
fn both_delimiters_comments_blank_lines_and_case_insensitive_keys() {
    let p = one("# leading comment\n\
         ; another\n\
         \n\
         [global]\n\
         CONCURRENCY = 8\n\
         \n\
         [docs]\n\
         \t# indented comment\n\
         Local_Dir: /store\n\
         path = /home/u/docs\n\
         path2:/home/u/more\n\
         archive_byte_size_threshold=42\n");
    assert_eq!(p.concurrency, 8);
    assert_eq!(
        p.backend,
        BackendSettings::Local {
            dir: "/store".into()
        }
    );
    assert_eq!(p.trees[0].root, PathBuf::from("/home/u/docs"));
    assert_eq!(p.trees[1].root, PathBuf::from("/home/u/more"));
    assert_eq!(p.archive_byte_size_threshold, 42);
    // The first `=` or `:` splits; the rest belongs to the value.
    let p = one("[p]\nlocal_dir = /s\npath = /a=b:c\n");
    assert_eq!(p.trees[0].root, PathBuf::from("/a=b:c"));
}

#[test]
fn crlf_and_byte_order_mark() {
    let p = one("\u{feff}[p]\r\nlocal_dir = /s\r\npath = /a\r\nexclude =\r\n  *.tmp\r\n");
    assert_eq!(p.trees[0].root, PathBuf::from("/a"));
    assert_eq!(p.exclude, vec!["*.tmp"]);
}

#[test]
fn exclude_continuation_lines() {
    let text = "[global]\nexclude = *.bak\n\n[p]\nlocal_dir = /s\nexclude =\n    *.tmp\n\n    # a comment\n\tnode_modules/\n    !keep.tmp\npath = /a\n";
    let p = one(text);
    assert_eq!(p.exclude, vec!["*.tmp", "node_modules/", "!keep.tmp"]);
    // The first pattern may sit on the key's line.
    let p = one("[p]\nlocal_dir = /s\npath = /a\nexclude = *.o\n  *.a\n");
    assert_eq!(p.exclude, vec!["*.o", "*.a"]);
    // A bad pattern is named with its own line.
    let e = err("[p]\nlocal_dir = /s\npath = /a\nexclude =\n  *.o\n  {a,b\n");
    assert_contains(&e, &[FILE, ":6:", "exclude", "{a,b"]);
}

#[test]
fn continuation_of_a_one_line_key_is_an_error() {
    let e = err("[p]\nlocal_dir = /s\npath = /a\n  path2 = /b\n");
    assert_contains(&e, &[":4:", "`path`", "line 3", "indentation"]);
    // An indented key right after a section header is just a key.
    let p = one("[p]\n  local_dir = /s\n  path = /a\n");
    assert_eq!(p.trees.len(), 1);
}

#[test]
fn duplicate_keys_and_sections() {
    let e = err("[p]\nlocal_dir = /s\npath = /a\nPATH = /b\n");
    assert_contains(&e, &[":4:", "`path`", "twice", "line 3", "[p]"]);
    let e = err("[global]\nconcurrency = 1\nconcurrency = 2\n");
    assert_contains(&e, &[":3:", "`concurrency`", "[global]"]);
    let e = err("[p]\nlocal_dir = /s\npath = /a\n[q]\npath = /q\n[p]\npath = /b\n");
    assert_contains(&e, &[":6:", "[p]", "twice", "line 1"]);
    // The same key in two sections is fine.
    let s = ok("[p]\nlocal_dir = /s\npath = /a\n[q]\nlocal_dir = /s\npath = /a\n");
    assert_eq!(s.profiles.len(), 2);
}

#[test]
fn lines_that_are_neither() {
    let e = err("[p]\nlocal_dir = /s\npath = /a\njust some words\n");
    assert!(e.starts_with(&format!("{FILE}:4: ")), "{e}");
    let e = err("concurrency = 3\n[p]\n");
    assert_contains(&e, &[":1:", "`concurrency`", "section"]);
    let e = err("[p\nlocal_dir = /s\n");
    assert_contains(&e, &[":1:", "section"]);
    let e = err("[]\n");
    assert_contains(&e, &[":1:", "section"]);
    let e = err("[p]\n= value\n");
    assert_contains(&e, &[":2:", "key"]);
}

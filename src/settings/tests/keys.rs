//! Keys: unknown ones, misspelt ones, and those in the wrong section.

use super::*;

#[test]
fn unknown_key_names_file_line_key_and_section() {
    let e = err("[global]\nconcurrency = 2\n[p]\nlocal_dir = /s\npath = /a\nfrobnicate = yes\n");
    assert!(e.starts_with(&format!("{FILE}:6: ")), "{e}");
    assert_contains(&e, &["`frobnicate`", "[p]"]);
    let e = err("[global]\nvalut_name = x\n");
    assert_contains(&e, &[":2:", "`valut_name`", "[global]"]);
    let e = err("[p]\nlocal_dir = /s\nvaultname = x\npath = /a\n");
    assert_contains(&e, &[":3:", "vaultname", "did you mean `vault_name`"]);
    let e = err("[p]\nlocal_dir = /s\npath1 = /a\n");
    assert_contains(&e, &[":3:", "`path1`", "`path2`"]);
    let e = err("[p]\nlocal_dir = /s\npath = /a\npath02 = /b\n");
    assert_contains(&e, &[":4:", "`path02`"]);
    // Profile-only keys are refused in [global], saying where they go.
    let e = err("[global]\npath = /a\n[p]\nlocal_dir = /s\npath = /b\n");
    assert_contains(&e, &[":2:", "`path`", "profile"]);
    let e = err("[global]\nvault_name = v\n");
    assert_contains(&e, &[":2:", "`vault_name`", "[global]"]);
}

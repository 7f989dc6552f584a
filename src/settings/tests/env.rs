//! The environment: the default settings file and catalog directory.

use super::*;

#[test]
fn default_database_dir_follows_xdg_data_home() {
    let env = env_of(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "/xdg/data")]);
    let s = parse_with("[d]\nlocal_dir=/s\npath=/d\n", Path::new(FILE), &env).unwrap();
    assert_eq!(
        s.profiles[0].database_dir,
        PathBuf::from("/xdg/data/glaciersync")
    );
    // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
    let env = env_of(&[("HOME", "/home/u"), ("XDG_DATA_HOME", "rel")]);
    let s = parse_with("[d]\nlocal_dir=/s\npath=/d\n", Path::new(FILE), &env).unwrap();
    assert_eq!(
        s.profiles[0].database_dir,
        PathBuf::from("/home/u/.local/share/glaciersync")
    );
    // No data directory known at all: say to set database_dir.
    let e = parse_with(
        "[d]\nlocal_dir=/s\npath=/d\n",
        Path::new(FILE),
        &env_of(&[]),
    )
    .unwrap_err()
    .to_string();
    assert_contains(&e, &[":1:", "database_dir"]);
}

#[test]
fn default_path_lookup() {
    let p = default_path_with(&env_of(&[
        ("GLACIERSYNC_CONFIG", "/x/my.ini"),
        ("XDG_CONFIG_HOME", "/xdg"),
        ("HOME", "/home/u"),
    ]));
    assert_eq!(p, PathBuf::from("/x/my.ini"));
    let p = default_path_with(&env_of(&[("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")]));
    assert_eq!(p, PathBuf::from("/xdg/glaciersync/settings.ini"));
    let p = default_path_with(&env_of(&[("GLACIERSYNC_CONFIG", ""), ("HOME", "/home/u")]));
    assert_eq!(p, PathBuf::from("/home/u/.config/glaciersync/settings.ini"));
    // The real environment gives some settings.ini.
    assert!(
        default_path().ends_with("settings.ini")
            || std::env::var_os("GLACIERSYNC_CONFIG").is_some()
    );
}

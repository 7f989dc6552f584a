//! The commented sample settings file.

/// The commented sample settings file that `glaciersync init` writes. It parses as is.
pub const SAMPLE: &str = r##"# glaciersync settings
#
# Written by `glaciersync init`. Lines starting with # or ; are comments.
# `key = value` and `key: value` both work; keys are case-insensitive; values are
# taken as written (no quotes needed around paths with spaces).
# An indented line continues the value above it (that is how `exclude` lists patterns).
# Relative paths are relative to this file's directory; ~/ is your home directory.
# Sizes are bytes, or take a binary suffix: 64MiB = 64M = 64MB = 67108864.
#
# Try `glaciersync sync --dry-run`, then `glaciersync sync`.

[global]
# Settings here apply to every profile; a profile may set any of them too, and wins.

# AWS credentials. Default: the standard AWS chain (environment variables,
# ~/.aws/credentials, SSO, instance roles), which is better than keys in this file.
# aws_access_key = AKIAXXXXXXXXXXXXXXXX
# aws_secret_key = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

# Profile in the AWS shared files (~/.aws/config, ~/.aws/credentials). Default: default
# aws_profile = default

# AWS region. Default: the AWS chain's, else us-east-1
# aws_region_name = us-east-1

# Another endpoint: an S3- or Glacier-compatible server. Default: AWS
# endpoint_url = http://127.0.0.1:9000

# Where the catalogs (<profile>.sqlite3) live.
# Default: $XDG_DATA_HOME/glaciersync, else ~/.local/share/glaciersync
# database_dir = ~/.local/share/glaciersync

# Uploads and downloads in flight, 1 to 64. Default: 4
# concurrency = 4

# Bounded waits for S3 and Glacier (seconds, or with s, m, h). A request that times out
# is tried again a few times, then the command stops with one line naming the endpoint.
# Opening a connection. Default: 10s
# connect_timeout = 10s
# From sending a request to the first byte of its answer; an upload gets the time its
# body takes at 32 KiB/s on top. Default: 60s
# read_timeout = 60s
# An upload or download that moves no bytes for this long is broken off. Default: 30s
# stall_timeout = 30s
# One request from start to end, whatever it does. Default: 1h
# request_timeout = 1h

# Also accepted here, as defaults for every profile: backend, bucket, storage_class,
# archive_byte_size_threshold, part_size, exclude (described below).


# One section per profile: a set of trees backed up to one place. The section name
# names the profile (`glaciersync -p documents ...`) and its catalog (documents.sqlite3).
[documents]
# Where the backup goes: glacier (a Glacier vault), s3 (an S3 bucket) or local (a
# directory). Default: glacier when vault_name is set, else local.
backend = local

# The local backend's directory: another disk, a NAS mount, ... Required for local.
local_dir = ~/glaciersync-store

# The trees to back up: path, path2, path3, ... (at least one). The key names the tree
# in `ls` and restores (path/report.pdf), so keep a tree's key when you edit this list.
path = ~/Documents
# path2 = ~/Pictures

# Files up to this size are packed together into tar bundles; a bundle is closed once
# it passes this size. Default: 16777216 (16MiB)
# archive_byte_size_threshold = 16MiB

# Multipart part size for large files. Default: 64MiB
# Glacier: 1MiB times a power of two (1MiB, 2MiB, 4MiB, ...) up to 4GiB. S3: 5MiB to 5GiB.
# part_size = 64MiB

# Encryption with age (age-encryption.org): with a recipient set, everything stored is
# encrypted to it, and syncing needs only this public key. restore and recover need the
# secret identity (`age_identity_file`); keep it off this machine for write-only backups,
# and keep a copy safe: without it the backup cannot be read. `glaciersync init --age`
# makes a key pair. Recipients: whitespace-separated or one per indented line.
# age_recipients = age1...
# age_recipients_file = ~/.config/glaciersync/recipients.txt
# age_identity_file = /media/usb-key/glaciersync-identity.txt

# gitignore-style patterns of files to leave out, one per indented line. Default: none
exclude =
    *.tmp
    .cache/
    Thumbs.db

# Retention for `glaciersync prune` (also accepted in [global]). Default: keep every
# snapshot. A snapshot is kept if any rule keeps it; the newest is always kept.
# Counts: the newest N snapshots, and the newest snapshot of each of the newest N hours,
# days, ISO weeks, months and years (local time).
# keep_last = 3
# keep_hourly = 0
# keep_daily = 7
# keep_weekly = 4
# keep_monthly = 12
# keep_yearly = 5
# Every snapshot within this span of the newest: h, d, w, m (months), y; e.g. 30d, 6m, 1y6m
# keep_within = 30d
# Catalog copies prune keeps in the backend (at least 1). Default: 3
# keep_catalog_copies = 3
# Days prune holds an unneeded archive at least; lengthens, never shortens, the storage
# class's minimum (S3 GLACIER 90, DEEP_ARCHIVE 180, STANDARD_IA 30; Glacier vault 90).
# min_storage_days = 0
# Refuse restores whose thaw and transfer would cost more US dollars (restore --max-cost).
# Default: no cap
# max_restore_cost = 20


# An S3 profile (remove the leading "# " to use it). Data goes to `storage_class`;
# the catalog's backup is kept in STANDARD so that `recover` needs no thaw.
# [photos]
# backend = s3
# # The bucket must exist. Required for s3.
# bucket = my-backup-bucket
# # Key prefix. Default: the profile name and a slash (photos/)
# prefix = photos/
# # DEEP_ARCHIVE, GLACIER, GLACIER_IR, STANDARD_IA or STANDARD. Default: DEEP_ARCHIVE
# storage_class = DEEP_ARCHIVE
# path = ~/Pictures
# path2 = ~/Videos
# exclude =
#     *.tmp

# A Glacier vault profile (the vault API): the vault is created when missing. Vault
# names are 1 to 255 of a-z, A-Z, 0-9, _ . and -. AWS stopped letting new customers
# create vaults on 2025-12-15; existing vaults keep working.
# [archive]
# vault_name = my-archive
# aws_region_name = eu-west-1
# path = ~/Archive
# part_size = 128MiB
"##;

/// [`SAMPLE`] with `tree` as the `[documents]` profile's tree (`init TREE`).
pub fn sample_for(tree: &str) -> String {
    SAMPLE.replacen("path = ~/Documents", &format!("path = {tree}"), 1)
}

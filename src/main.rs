//! The glaciersync command line: parses arguments, runs library commands per profile, prints
//! text or one JSON document, and maps outcomes to the exit codes of SPEC.md.

use clap::{Parser, Subcommand};
use glaciersync::backend::Tier;
use glaciersync::commands::{self, VerifyOptions};
use glaciersync::error::Error;
use glaciersync::progress::Progress;
use glaciersync::restore::RestoreArgs;
use glaciersync::settings::{self, Profile, Settings};
use glaciersync::{log, timespec};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "glaciersync",
    version,
    about = "Back up directory trees to cold storage and bring them back"
)]
struct Cli {
    /// Settings file (default: $GLACIERSYNC_CONFIG, else ~/.config/glaciersync/settings.ini)
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Work on this profile only (repeatable; default: every profile)
    #[arg(short = 'p', long = "profile", global = true)]
    profiles: Vec<String>,
    /// Print one JSON document on stdout when the command ends
    #[arg(long, global = true)]
    json: bool,
    /// Errors only
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More detail (repeatable)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Back up each profile: scan, upload what is new or changed, record it, back up the catalog
    Sync {
        /// Print the plan (counts, bytes, archives, requests, estimated cost); change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Files, versions, bytes stored, archives, last sync, pending retrievals, estimated cost
    Status,
    /// The files as they stood at TIME (default: the last sync): path, size, mtime
    Ls {
        /// RFC 3339 time or a date (end of that day, local time)
        #[arg(long)]
        at: Option<String>,
        /// Globs over paths as ls prints them (none: everything)
        patterns: Vec<String>,
    },
    /// Start or continue a restore of the matching files into DIR
    Restore(RestoreArgs),
    /// Rebuild a lost local catalog of each profile from the backend alone
    Recover {
        /// Retrieval tier for a catalog copy in cold storage
        #[arg(long, default_value = "standard", value_parser = ["bulk", "standard", "expedited"])]
        tier: String,
    },
    /// Check the catalog's integrity; --local re-hashes files, --remote compares the backend
    Verify {
        #[arg(long)]
        local: bool,
        #[arg(long)]
        remote: bool,
    },
    /// Write a commented sample settings file (never overwrites)
    Init { file: Option<PathBuf> },
}

/// Exit codes of SPEC.md, most severe last.
const OK: u8 = 0;
const PARTIAL: u8 = 1;
const FATAL: u8 = 2;
const PENDING: u8 = 75;

fn severity(code: u8) -> u8 {
    match code {
        OK => 0,
        PARTIAL => 1,
        PENDING => 2,
        _ => 3,
    }
}

fn worst(a: u8, b: u8) -> u8 {
    if severity(b) > severity(a) { b } else { a }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { FATAL } else { OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    log::set_level(if cli.quiet { 0 } else { 1 + cli.verbose });
    ExitCode::from(run(&cli))
}

fn config_path(cli: &Cli) -> PathBuf {
    cli.config.clone().unwrap_or_else(settings::default_path)
}

fn load(cli: &Cli) -> Result<(Settings, Vec<Profile>), Error> {
    let s = settings::load(&config_path(cli))?;
    let mut chosen = Vec::new();
    for name in &cli.profiles {
        match s.profiles.iter().find(|p| &p.name == name) {
            Some(p) => chosen.push(p.clone()),
            None => {
                return Err(Error::Usage(format!(
                    "no profile [{name}] in {} (profiles: {})",
                    s.file.display(),
                    s.profiles
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    if chosen.is_empty() {
        chosen = s.profiles.clone();
    }
    Ok((s, chosen))
}

fn print_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
}

fn fail(cli: &Cli, e: &Error) -> u8 {
    log::error(&e.to_string());
    if cli.json {
        print_json(&json!({"error": e.to_string()}));
    }
    FATAL
}

fn run(cli: &Cli) -> u8 {
    if let Command::Init { file } = &cli.command {
        let path = file.clone().unwrap_or_else(|| config_path(cli));
        return match settings::write_sample(&path) {
            Ok(()) => {
                log::info(&format!(
                    "wrote a sample settings file to {}: edit it, then run `glaciersync sync`",
                    path.display()
                ));
                if cli.json {
                    print_json(&json!({"written": path.display().to_string()}));
                }
                OK
            }
            Err(e) => fail(cli, &e),
        };
    }
    let (settings, profiles) = match load(cli) {
        Ok(x) => x,
        Err(e) => return fail(cli, &e),
    };
    let progress = Progress::new(!cli.quiet && !cli.json);
    let mut code = OK;
    let mut docs = Vec::new();
    let mut stdout = std::io::stdout().lock();
    for p in &profiles {
        let result: Result<(u8, Value), Error> = (|| match &cli.command {
            Command::Sync { dry_run } => {
                let r = commands::sync(p, &settings.file, *dry_run, &progress)?;
                if !cli.json {
                    print_sync_summary(&r);
                }
                let c = if r.errors.is_empty() { OK } else { PARTIAL };
                Ok((c, serde_json::to_value(&r).expect("serializable")))
            }
            Command::Status => {
                let r = commands::status(p)?;
                if !cli.json {
                    let _ = writeln!(
                        stdout,
                        "{}: {} backend, {} files ({} bytes), {} versions, {} archives ({} bytes stored), last sync {}{}, {} pending retrievals, about ${:.2}/month",
                        r.name,
                        r.backend,
                        r.files,
                        r.file_bytes,
                        r.versions,
                        r.archives,
                        r.stored_bytes,
                        r.last_sync.as_deref().unwrap_or("never"),
                        if r.interrupted_sync {
                            " (a later sync was interrupted: run sync to finish it)"
                        } else {
                            ""
                        },
                        r.pending_retrievals,
                        r.estimated_monthly_usd
                    );
                }
                Ok((OK, serde_json::to_value(&r).expect("serializable")))
            }
            Command::Ls { at, patterns } => {
                let at = at.as_deref().map(timespec::parse).transpose()?;
                let entries = commands::ls(p, at, patterns)?;
                if !cli.json {
                    for e in &entries {
                        let _ = stdout.write_all(&e.raw_path);
                        let _ = writeln!(stdout, "\t{}\t{}", e.size, e.mtime);
                    }
                }
                Ok((OK, json!({"name": p.name, "files": entries})))
            }
            Command::Restore(args) => {
                let r = commands::restore(p, args, &progress)?;
                for e in r.errors() {
                    log::error(&format!("{}: {}", e.path, e.error));
                }
                if !cli.json {
                    log::info(&r.to_string());
                }
                Ok((
                    r.exit_code(),
                    serde_json::to_value(&r).expect("serializable"),
                ))
            }
            Command::Recover { tier } => {
                let r = commands::recover(p, Tier::parse(tier).expect("clap checked"))?;
                if !cli.json && r.state == "recovered" {
                    log::info(&format!(
                        "{}: recovered the catalog from {} ({} snapshots, {} files)",
                        r.name,
                        r.catalog_object.as_deref().unwrap_or("?"),
                        r.snapshots,
                        r.files
                    ));
                }
                Ok((
                    r.exit_code(),
                    serde_json::to_value(&r).expect("serializable"),
                ))
            }
            Command::Verify { local, remote } => {
                let r = commands::verify(
                    p,
                    VerifyOptions {
                        local: *local,
                        remote: *remote,
                    },
                )?;
                for c in &r.changed_since_sync {
                    log::verbose(&format!("{}: {c}", r.name));
                }
                for prob in &r.problems {
                    log::error(&format!("{}: {prob}", r.name));
                }
                if !cli.json {
                    log::info(&format!(
                        "{}: catalog {}, {} files re-hashed, {} archives compared, {} changed since the last sync, {} problems",
                        r.name,
                        if r.catalog_ok { "ok" } else { "DAMAGED" },
                        r.checked_files,
                        r.checked_archives,
                        r.changed_since_sync.len(),
                        r.problems.len()
                    ));
                }
                let c = if !r.problems.is_empty() {
                    PARTIAL
                } else if r.pending {
                    PENDING
                } else {
                    OK
                };
                Ok((c, serde_json::to_value(&r).expect("serializable")))
            }
            Command::Init { .. } => unreachable!("handled above"),
        })();
        match result {
            Ok((c, doc)) => {
                code = worst(code, c);
                docs.push(doc);
            }
            Err(e) => {
                log::error(&e.to_string());
                code = worst(code, FATAL);
                docs.push(json!({"name": p.name, "error": e.to_string()}));
            }
        }
    }
    progress.finish();
    drop(stdout);
    if cli.json {
        print_json(&json!({ "profiles": docs }));
    }
    code
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn print_sync_summary(r: &glaciersync::sync::SyncReport) {
    if let Some(plan) = &r.plan {
        log::info(&format!(
            "{} (dry run): {} scanned, {} new, {} changed, {} unchanged, {} deleted; would read {}, {} small files in about {} bundles, {} large files ({}), {} archives, {} requests, about ${:.4} in requests and ${:.4}/month more storage",
            r.name,
            r.counts.scanned,
            r.counts.new,
            r.counts.changed,
            r.counts.unchanged,
            r.counts.deleted,
            human_bytes(plan.read_bytes),
            plan.bundled_files,
            plan.archives.saturating_sub(plan.large_files + 1),
            plan.large_files,
            human_bytes(plan.large_bytes),
            plan.archives,
            plan.requests,
            plan.estimated_upload_usd,
            plan.estimated_added_monthly_usd
        ));
        return;
    }
    log::info(&format!(
        "{}: {} scanned, {} new, {} changed, {} unchanged, {} deleted, {} deduplicated; {} archives ({}) uploaded in {:.1} s{}",
        r.name,
        r.counts.scanned,
        r.counts.new,
        r.counts.changed,
        r.counts.unchanged,
        r.counts.deleted,
        r.deduplicated,
        r.archives_uploaded,
        human_bytes(r.uploaded_bytes),
        r.seconds,
        if r.errors.is_empty() {
            String::new()
        } else {
            format!("; {} errors", r.errors.len())
        }
    ));
}

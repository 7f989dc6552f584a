//! The glaciersync command line: parses arguments, runs library commands per profile, prints
//! their reports as text or as one JSON document, and exits with the most severe of their exit
//! codes (SPEC.md). What to print and which code to exit with is the library's to decide.

use clap::{Parser, Subcommand};
use glaciersync::backend::Tier;
use glaciersync::commands::{self, AnyReport, Exit, VerifyOptions};
use glaciersync::error::Error;
use glaciersync::progress::Progress;
use glaciersync::restore::RestoreArgs;
use glaciersync::settings::{self, Profile, Settings};
use glaciersync::{log, timespec};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
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
        /// Store new objects unencrypted although earlier ones are age-encrypted
        #[arg(long)]
        allow_plaintext: bool,
        /// End with a full catalog copy (not a delta), even when nothing changed: after
        /// `recover` or `verify --remote` found a copy in the backend damaged
        #[arg(long)]
        full_catalog_copy: bool,
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
    Restore {
        #[command(flatten)]
        args: RestoreArgs,
    },
    /// Rebuild a lost local catalog of each profile from the backend alone
    Recover {
        /// Retrieval tier for a catalog copy in cold storage
        #[arg(long, value_enum, default_value_t = Tier::Standard)]
        tier: Tier,
    },
    /// Check the catalog's integrity; --local re-hashes files, --remote compares the backend
    Verify {
        #[arg(long)]
        local: bool,
        #[arg(long)]
        remote: bool,
    },
    /// Forget snapshots the retention policy does not keep; delete archives no kept version
    /// needs once past their minimum storage duration (younger ones are held); old catalog copies
    Prune {
        /// Print the plan (what would be forgotten, deleted and held); change nothing
        #[arg(long)]
        dry_run: bool,
        /// Also delete this profile's archives in the backend that the catalog does not know
        #[arg(long)]
        unknown: bool,
    },
    /// Write a commented sample settings file (at -c FILE; never overwrites) backing up TREE
    Init {
        /// The tree to back up (default: ~/Documents when it exists, else the current
        /// directory); a path ending in .ini names the settings file instead (older form)
        tree: Option<PathBuf>,
        /// Also write a new age identity (mode 0600) and encrypt to it
        #[arg(long)]
        age: bool,
    },
}

fn main() -> ExitCode {
    glaciersync::interrupt::install();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Fatal
            } else {
                Exit::Ok
            };
            let _ = e.print();
            return code.into();
        }
    };
    log::set_level(if cli.quiet { 0 } else { 1 + cli.verbose });
    run(&cli).into()
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

fn fail(cli: &Cli, e: &Error) -> Exit {
    log::error(&e.to_string());
    if cli.json {
        print_json(&json!({"error": e.to_string()}));
    }
    Exit::Fatal
}

/// `init` works on no profile: its report is the whole document.
fn init(cli: &Cli, arg: Option<&Path>, age: bool) -> Exit {
    let (path, tree) = match arg.map(commands::init_arg).transpose() {
        Ok(Some(commands::InitArg::SettingsFile(f))) => (f, None),
        Ok(Some(commands::InitArg::Tree(t))) => (config_path(cli), Some(t)),
        Ok(None) => (config_path(cli), None),
        Err(e) => return fail(cli, &e),
    };
    match commands::init(&path, tree.as_deref(), age) {
        Ok(r) => {
            r.print();
            if cli.json {
                print_json(&r.json());
            }
            r.exit()
        }
        Err(e) => fail(cli, &e),
    }
}

fn run(cli: &Cli) -> Exit {
    if let Command::Init { tree, age } = &cli.command {
        return init(cli, tree.as_deref(), *age);
    }
    let (settings, profiles) = match load(cli) {
        Ok(x) => x,
        Err(e) => return fail(cli, &e),
    };
    let progress = Progress::new(!cli.quiet && !cli.json);
    let mut code = Exit::Ok;
    let mut docs = Vec::new();
    for p in &profiles {
        match run_one(cli, p, &settings.file, &progress) {
            Ok(r) => {
                if !cli.json {
                    r.print();
                }
                code = code.worst(r.exit());
                docs.push(r.json());
            }
            Err(e) => {
                log::error(&e.to_string());
                code = code.worst(Exit::Fatal);
                docs.push(json!({"name": p.name, "error": e.to_string()}));
            }
        }
    }
    progress.finish();
    if cli.json {
        print_json(&json!({ "profiles": docs }));
    }
    code
}

/// The command of `cli` on one profile.
fn run_one(
    cli: &Cli,
    p: &Profile,
    settings_file: &Path,
    progress: &Progress,
) -> Result<Box<dyn AnyReport>, Error> {
    Ok(match &cli.command {
        Command::Sync {
            dry_run,
            allow_plaintext,
            full_catalog_copy,
        } => {
            let flags = commands::SyncFlags {
                dry_run: *dry_run,
                allow_plaintext: *allow_plaintext,
                full_catalog_copy: *full_catalog_copy,
            };
            Box::new(commands::sync(p, settings_file, flags, progress)?)
        }
        Command::Status => Box::new(commands::status(p)?),
        Command::Ls { at, patterns } => {
            let at = at.as_deref().map(timespec::parse).transpose()?;
            Box::new(commands::ls(p, at, patterns)?)
        }
        Command::Restore { args } => Box::new(commands::restore(p, args, progress)?),
        Command::Prune { dry_run, unknown } => {
            Box::new(commands::prune(p, settings_file, *dry_run, *unknown)?)
        }
        Command::Recover { tier } => Box::new(commands::recover(p, *tier)?),
        Command::Verify { local, remote } => Box::new(commands::verify(
            p,
            VerifyOptions {
                local: *local,
                remote: *remote,
            },
        )?),
        Command::Init { .. } => unreachable!("handled by `run`"),
    })
}

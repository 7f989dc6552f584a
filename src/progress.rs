//! Progress bars on stderr, one per phase (scan, read, upload, restore), with files, bytes,
//! rate and ETA. Hidden when stderr is not a terminal or output is quiet; every method is then
//! a cheap no-op on hidden bars.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

/// Items done and to do, shown beside a bytes bar (`120/400 files`).
#[derive(Default)]
struct Count {
    done: AtomicU64,
    total: AtomicU64,
}

impl Count {
    fn show(&self, bar: &ProgressBar, unit: &str) {
        if !bar.is_hidden() {
            bar.set_message(format!(
                "{}/{} {unit}",
                self.done.load(Ordering::Relaxed),
                self.total.load(Ordering::Relaxed)
            ));
        }
    }
}

/// The bars of one command.
pub struct Progress {
    multi: MultiProgress,
    scan: ProgressBar,
    read: ProgressBar,
    upload: ProgressBar,
    scan_bytes: AtomicU64,
    read_files: Count,
    uploads: Count,
}

fn bytes_style(label: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{label:>8} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}} {{msg}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl Progress {
    /// Bars drawn on stderr when it is a terminal and `enabled`.
    pub fn new(enabled: bool) -> Progress {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let scan = multi.add(ProgressBar::new_spinner());
        scan.set_style(
            ProgressStyle::with_template("    scan {spinner} {pos} files, {msg} {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let read = multi.add(ProgressBar::new(0));
        read.set_style(bytes_style("read"));
        let upload = multi.add(ProgressBar::new(0));
        upload.set_style(bytes_style("upload"));
        crate::log::set_bars(Some(multi.clone()));
        Progress {
            multi,
            scan,
            read,
            upload,
            scan_bytes: AtomicU64::new(0),
            read_files: Count::default(),
            uploads: Count::default(),
        }
    }

    /// Bars that never draw (tests, library use).
    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    pub fn scanned(&self, files: u64, bytes: u64) {
        self.scan.inc(files);
        let total = self.scan_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if !self.scan.is_hidden() {
            self.scan.set_message(crate::units::bytes(total));
        }
    }

    pub fn scan_finished(&self) {
        self.scan.finish();
    }

    /// A file of `bytes` is queued for reading.
    pub fn queue_read(&self, bytes: u64) {
        self.read.inc_length(bytes);
        self.read_files.total.fetch_add(1, Ordering::Relaxed);
        self.read_files.show(&self.read, "files");
    }

    pub fn read_done(&self, bytes: u64) {
        self.read.inc(bytes);
        self.read_files.done.fetch_add(1, Ordering::Relaxed);
        self.read_files.show(&self.read, "files");
    }

    /// An archive of `bytes` is queued for upload.
    pub fn queue_upload(&self, bytes: u64) {
        self.upload.inc_length(bytes);
        self.uploads.total.fetch_add(1, Ordering::Relaxed);
        self.uploads.show(&self.upload, "archives");
    }

    pub fn upload_done(&self, bytes: u64) {
        self.upload.inc(bytes);
        self.uploads.done.fetch_add(1, Ordering::Relaxed);
        self.uploads.show(&self.upload, "archives");
    }

    /// A bytes bar for a restore or download phase.
    pub fn bytes_bar(&self, label: &str, total: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(bytes_style(label));
        bar
    }

    /// Removes the bars from the screen.
    pub fn finish(&self) {
        for b in [&self.scan, &self.read, &self.upload] {
            b.finish_and_clear();
        }
        let _ = self.multi.clear();
        crate::log::set_bars(None);
    }
}

//! Progress bars on stderr, one per phase (scan, read, upload, restore), with files, bytes,
//! rate and ETA. Hidden when stderr is not a terminal or output is quiet; every method is then
//! a cheap no-op on hidden bars.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// The bars of one command.
pub struct Progress {
    multi: MultiProgress,
    scan: ProgressBar,
    read: ProgressBar,
    upload: ProgressBar,
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
            ProgressStyle::with_template("    scan {spinner} {pos} files, {msg}")
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
        }
    }

    /// Bars that never draw (tests, library use).
    pub fn hidden() -> Progress {
        Progress::new(false)
    }

    pub fn scanned(&self, files: u64, bytes: u64) {
        self.scan.inc(files);
        if !self.scan.is_hidden() {
            let total = self.scan.message();
            let sum = total
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
                + bytes;
            self.scan.set_message(format!("{sum} bytes"));
        }
    }

    pub fn scan_finished(&self) {
        self.scan.finish();
    }

    pub fn queue_read(&self, bytes: u64) {
        self.read.inc_length(bytes);
    }

    pub fn read_done(&self, bytes: u64) {
        self.read.inc(bytes);
    }

    pub fn queue_upload(&self, bytes: u64) {
        self.upload.inc_length(bytes);
    }

    pub fn upload_done(&self, bytes: u64) {
        self.upload.inc(bytes);
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

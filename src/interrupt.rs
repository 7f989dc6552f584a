//! SIGINT, SIGTERM and SIGHUP end a command with one line and exit code 128 + the signal, as
//! a shell reports it. Stopping at any moment is safe (see the crash tests: every step is
//! recorded in one transaction, and the next run continues where this one stopped), so no work
//! is unwound: the line says so.

/// Starts one thread that waits for the signals. Call it first in `main`.
#[cfg(unix)]
pub fn install() {
    use std::io::IsTerminal;
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), "SIGINT", 2),
        (SignalKind::terminate(), "SIGTERM", 15),
        (SignalKind::hangup(), "SIGHUP", 1),
    ];
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async move {
            for (kind, name, number) in kinds {
                let Ok(mut s) = signal(kind) else { continue };
                tokio::spawn(async move {
                    if s.recv().await.is_some() {
                        // On a terminal the message starts on a line of its own (a progress
                        // line or the echoed ^C may be there); elsewhere it is one line.
                        let lead = if std::io::stderr().is_terminal() {
                            "\n"
                        } else {
                            ""
                        };
                        eprintln!(
                            "{lead}error: interrupted ({name}): what was done is kept; run the \
                             same command again to continue"
                        );
                        std::process::exit(128 + number);
                    }
                });
            }
            let _ = ready_tx.send(());
            std::future::pending::<()>().await;
        });
    });
    // The handlers are in place before any work starts.
    let _ = ready_rx.recv();
}

#[cfg(not(unix))]
pub fn install() {}

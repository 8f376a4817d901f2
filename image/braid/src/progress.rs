//! Progress for long steps. On a terminal: a spinner with the step, a counter
//! and the elapsed time (indicatif). Elsewhere (CI logs): one line when a step
//! starts and one when it ends, with its duration.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// One step in progress.
pub struct Step {
    bar: Option<ProgressBar>,
    title: String,
    started: Instant,
}

impl Step {
    /// Starts a step shown as a spinner.
    pub fn spinner(title: impl Into<String>) -> Self {
        let title = title.into();
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(title.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            eprintln!("braid: {title} ...");
            None
        };
        Self {
            bar,
            title,
            started: Instant::now(),
        }
    }

    /// Updates the detail shown after the title (terminal only).
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.into());
        }
    }

    /// Time since the step started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the step successfully.
    pub fn done(self) -> Duration {
        self.finish("done")
    }

    /// Ends the step with a closing word (e.g. "cached").
    pub fn finish(self, word: &str) -> Duration {
        let t = self.started.elapsed();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("braid: {}: {word} ({:.1} s)", self.title, t.as_secs_f64());
        t
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

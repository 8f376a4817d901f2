//! A minimal `log` backend writing to stderr, which is the serial console on a
//! router. Each line carries the time since start, so boot timing can be read off
//! the console. (env_logger would add ~100 KB of regex and formatting machinery.)

use std::io::Write;
use std::time::Instant;

struct Logger {
    start: Instant,
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let t = self.start.elapsed();
        // One write per line, so concurrent lines do not interleave.
        let line = format!(
            "[{:>5}.{:03}] {:<5} {}: {}\n",
            t.as_secs(),
            t.subsec_millis(),
            record.level(),
            record.target(),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger with the given maximum level. Later calls only change the level.
pub fn init(level: log::LevelFilter) {
    let logger = LOGGER.get_or_init(|| Logger {
        start: Instant::now(),
    });
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

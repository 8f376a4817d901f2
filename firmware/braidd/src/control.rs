//! The control socket: a Unix socket where `braidd status` (or anything that
//! speaks one line of text) asks for the paths' state, counters and the
//! scheduler's view. The answer is plain text, a line per path, stable enough to
//! grep in tests and scripts.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use braid_tunnel::connection::{Class, Connection};
use braid_tunnel::path::PathState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// The listening socket (removed when dropped).
pub struct Control {
    listener: UnixListener,
    path: PathBuf,
}

impl Control {
    /// Listens at `path`, replacing a stale socket file.
    pub fn bind(path: &Path) -> io::Result<Self> {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let listener = UnixListener::bind(path).map_err(|e| {
            io::Error::new(e.kind(), format!("control socket {}: {e}", path.display()))
        })?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// The next client, if one connects.
    pub async fn accept(&self) -> Option<UnixStream> {
        self.listener.accept().await.ok().map(|(s, _)| s)
    }

    /// Writes the status to a client and closes it.
    pub async fn answer(&self, mut stream: UnixStream, status: &Status) {
        let _ = stream.write_all(status.0.as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A rendered status report.
pub struct Status(pub String);

fn state(s: PathState) -> &'static str {
    match s {
        PathState::Probing => "probing",
        PathState::Up => "up",
        PathState::Degraded => "degraded",
        PathState::Down => "down",
    }
}

impl Status {
    /// One connection's paths and counters; `names` names the paths.
    pub fn connection(conn: &Connection, names: &[String], header: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{header} established={}", conn.is_established());
        for p in conn.paths() {
            let name = names.get(usize::from(p.id)).map_or("?", String::as_str);
            let _ = writeln!(
                s,
                "path {} name={} state={} srtt_ms={:.1} min_rtt_ms={:.1} queue_ms={:.1} loss_permille={} rate_mbit={:.2} pacing_mbit={:.2} sent={} mode={}",
                p.id,
                name,
                state(p.state),
                p.srtt_us.unwrap_or(0) as f64 / 1000.0,
                p.min_rtt_us.unwrap_or(0) as f64 / 1000.0,
                p.queue_us as f64 / 1000.0,
                p.loss_permille,
                p.btl_bw as f64 * 8.0 / 1e6,
                p.pacing_rate as f64 * 8.0 / 1e6,
                p.sent_packets,
                p.mode,
            );
        }
        let st = conn.stats();
        let _ = writeln!(
            s,
            "stats rx_ok={} rx_replayed={} rx_unauthentic={} rx_malformed={} rx_unknown_session={} tx_packets={} tx_dropped={} handshakes={} nacks_sent={} repairs_sent={} sparse_sent={} padding_sent={} rerouted={} compressed={} compress_saved={} context_misses={} expand_malformed={}",
            st.rx_ok, st.rx_replayed, st.rx_unauthentic, st.rx_malformed, st.rx_unknown_session, st.tx_packets, st.tx_dropped, st.handshakes_sent, st.nacks_sent, st.repairs_sent, st.sparse_sent, st.padding_sent, st.rerouted, st.compressed, st.compress_saved, st.context_misses, st.expand_malformed
        );
        for (name, class) in [
            ("aggregate", Class::Aggregate),
            ("redundant", Class::Redundant),
            ("interactive", Class::Interactive),
        ] {
            let r = conn.reorder_stats(class);
            let _ = writeln!(
                s,
                "reorder {name} delivered={} reordered={} duplicates={} late={} skipped={} repaired={}",
                r.delivered, r.reordered, r.duplicates, r.late, r.skipped, r.repaired
            );
        }
        let r = conn.release_stats();
        let _ = writeln!(
            s,
            "release aggregate paced={} max_queued={}",
            r.paced, r.max_queued
        );
        s
    }

    /// The router's status.
    pub fn router(conn: &Connection, names: &[String]) -> Self {
        Self(Self::connection(conn, names, "router"))
    }
}

/// `braidd status`: asks a running braidd and prints its answer.
pub fn query(path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{}: {e} (is braidd running?)", path.display()),
        )
    })?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[allow(dead_code)]
async fn read_line(stream: &mut UnixStream) -> io::Result<String> {
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).await?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

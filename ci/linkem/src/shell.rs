//! The I/O shell around the sans-IO model: one thread, one epoll set with the
//! packet sockets, an absolute CLOCK_MONOTONIC timerfd armed at the earliest
//! model deadline or scripted event, a signalfd for SIGTERM/SIGINT and the
//! control socket. A single thread keeps every direction's schedule in one
//! clock domain with no locks; the model computes exact departure times from
//! the kernel's receive stamps (so a late read does not delay a frame), and
//! the only error the shell adds is its wake-up latency at departure
//! (reported as `late_*` in the stats, measured in BENCHMARKS.md), which the
//! timer slack of 1 ns keeps as small as the kernel allows.
//!
//! Frames arriving on interface `a` of a path go through its `up` direction
//! and out of `b`; frames arriving on `b` go through `down` and out of `a`.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use crate::command::{self, Change, Command, Dirs};
use crate::config::{self, Config, Event};
use crate::model::{derive_seed, Direction, DropReason, Stats, Verdict};
use crate::sys::{self, Packet, PacketSocket, ETH_HLEN, MAX_BATCH, VLAN_HLEN};
use crate::units::{Ms, Nanos, RateDisplay};

/// How `braid-linkem run` was asked to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The TOML configuration.
    pub config: PathBuf,
    /// Where to listen for control commands, if anywhere.
    pub control: Option<PathBuf>,
    /// Base seed of the loss and jitter draws.
    pub seed: u64,
    /// SCHED_FIFO priority (1-99) to run at, or 0 for the normal scheduler.
    pub priority: u8,
}

/// The line printed on stdout once every socket is open.
pub const READY: &str = "linkem: ready";

/// Direction names, indexed like the directions of a path.
pub const DIR_NAMES: [&str; 2] = ["up", "down"];

const TOKEN_TIMER: u64 = 1 << 40;
const TOKEN_SIGNAL: u64 = TOKEN_TIMER + 1;
const TOKEN_LISTENER: u64 = TOKEN_TIMER + 2;
const TOKEN_CLIENT: u64 = 1 << 41;
/// Receive batches per readable socket per loop iteration, so that one busy
/// interface cannot starve the timer and the others (epoll is level-triggered).
const RX_ROUNDS: usize = 4;
/// Longest control request.
const MAX_REQUEST: usize = 4096;

pub use sys::now;

/// One direction with the counters the model does not keep.
struct Dir {
    model: Direction<Packet>,
    in_frames: u64,
    in_bytes: u64,
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// The running emulator.
struct Lem {
    config: Config,
    /// Index `2 * path + side`: side 0 is `a`, side 1 is `b`.
    socks: Vec<PacketSocket>,
    /// Index `2 * path + dir`: direction `i` reads `socks[i]` and writes `socks[i ^ 1]`.
    dirs: Vec<Dir>,
    /// Per ingress socket: whether the oversize hint was printed.
    warned_oversize: Vec<bool>,
    /// Per egress socket: whether a send error was printed.
    warned_send: Vec<bool>,
    /// Free frame buffers.
    pool: Vec<Packet>,
    /// Receive buffers (one batch).
    rx: Vec<Packet>,
    /// Frames due on one egress socket (one batch).
    tx: Vec<Packet>,
    max_frame: usize,
    /// When `linkem: ready` was printed: the origin of the events' times.
    start: Nanos,
    next_event: usize,
    clients: Vec<Option<Client>>,
}

/// Runs until SIGTERM or SIGINT; prints the final stats on stdout.
pub fn run(opts: &Options) -> anyhow::Result<()> {
    let config = config::load(&opts.config)?;
    // Wake-ups as close to the deadline as the kernel can: the default slack
    // of 50 us would be the largest error of every delay.
    nix::sys::prctl::set_timerslack(1).context("prctl(PR_SET_TIMERSLACK)")?;
    realtime(opts.priority);

    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals
        .thread_block()
        .context("blocking SIGTERM and SIGINT")?;
    let sigfd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .context("signalfd")?;

    let mut socks = Vec::new();
    let existing = sys::if_names();
    for p in &config.paths {
        for (field, ifname) in [("a", &p.a), ("b", &p.b)] {
            let Some(index) = sys::if_index(ifname) else {
                bail!(
                    "{}: [[path]] {:?} {field}: interface {ifname:?} does not exist in this network namespace; \
                     interfaces here: {}",
                    opts.config.display(),
                    p.name,
                    existing.join(", ")
                );
            };
            let s = PacketSocket::open(ifname, index).map_err(|e| {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    anyhow::anyhow!(
                        "{e} (packet sockets need root or CAP_NET_RAW and CAP_NET_ADMIN)"
                    )
                } else {
                    e.into()
                }
            })?;
            socks.push(s);
        }
    }
    let max_frame = socks.iter().map(|s| s.mtu).max().unwrap_or(1500) + ETH_HLEN + VLAN_HLEN;

    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll_create")?;
    for (i, s) in socks.iter().enumerate() {
        epoll.add(s.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, i as u64))?;
    }
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .context("timerfd_create")?;
    epoll.add(
        timer.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_TIMER),
    )?;
    epoll.add(
        sigfd.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_SIGNAL),
    )?;

    let listener = match &opts.control {
        Some(path) => {
            remove_stale_socket(path)?;
            let l = UnixListener::bind(path)
                .with_context(|| format!("control socket {}", path.display()))?;
            l.set_nonblocking(true)?;
            epoll.add(
                l.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_LISTENER),
            )?;
            Some(l)
        }
        None => None,
    };

    let mut dirs = Vec::new();
    for (i, p) in config.paths.iter().enumerate() {
        for (d, params) in [&p.up, &p.down].into_iter().enumerate() {
            dirs.push(Dir {
                model: Direction::new(params.clone(), derive_seed(opts.seed, i, d)),
                in_frames: 0,
                in_bytes: 0,
            });
            let (from, to) = if d == 0 { (&p.a, &p.b) } else { (&p.b, &p.a) };
            eprintln!(
                "linkem: {} {} ({from} -> {to}): rate {} delay {} jitter {} loss {:.3}% limit {} B",
                p.name,
                DIR_NAMES[d],
                RateDisplay(params.rate),
                Ms(params.delay),
                Ms(params.jitter),
                params.loss * 100.0,
                params.limit_bytes()
            );
        }
    }

    let n = socks.len();
    let mut lem = Lem {
        config,
        socks,
        dirs,
        warned_oversize: vec![false; n],
        warned_send: vec![false; n],
        pool: Vec::new(),
        rx: (0..MAX_BATCH)
            .map(|_| Packet::with_capacity(max_frame))
            .collect(),
        tx: Vec::with_capacity(MAX_BATCH),
        max_frame,
        start: now(),
        next_event: 0,
        clients: Vec::new(),
    };
    {
        let mut out = io::stdout().lock();
        writeln!(out, "{READY}")?;
        out.flush()?;
    }

    let mut events = [EpollEvent::empty(); 64];
    let mut armed: Option<Nanos> = None;
    loop {
        let t = now();
        lem.run_events(t);
        lem.deliver(t);

        let deadline = lem.next_deadline();
        if deadline != armed {
            match deadline {
                Some(d) => timer.set(
                    Expiration::OneShot(TimeSpec::from(Duration::from_nanos(d))),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )?,
                None => timer.unset()?,
            }
            armed = deadline;
        }

        let got = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(k) => k,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e).context("epoll_wait"),
        };
        for ev in &events[..got] {
            match ev.data() {
                TOKEN_TIMER => {
                    // Clear the expiry count; the next iteration re-arms.
                    let mut b = [0u8; 8];
                    let _ =
                        nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&timer.as_fd()), &mut b);
                    armed = None;
                }
                TOKEN_SIGNAL => {
                    if let Ok(Some(_)) = sigfd.read_signal() {
                        let mut out = io::stdout().lock();
                        writeln!(out, "linkem: final stats")?;
                        for line in lem.stats_lines() {
                            writeln!(out, "{line}")?;
                        }
                        out.flush()?;
                        if let Some(path) = &opts.control {
                            let _ = std::fs::remove_file(path);
                        }
                        return Ok(());
                    }
                }
                TOKEN_LISTENER => {
                    if let Some(l) = &listener {
                        lem.accept(l, &epoll);
                    }
                }
                token if token >= TOKEN_CLIENT => {
                    lem.client_readable((token - TOKEN_CLIENT) as usize, &epoll)
                }
                token => lem.receive(token as usize),
            }
        }
    }
}

/// Moves the (single) emulator thread to SCHED_FIFO at `priority`, so that a
/// busy machine delays its wake-ups by microseconds rather than by a time
/// slice: netem runs in the kernel's softirq, and the tests and the tunnel
/// bench compare against the delays asked for. Not being allowed is a
/// warning, not an error: the emulator still works, less precisely.
fn realtime(priority: u8) {
    if priority == 0 {
        return;
    }
    let rc = sys::set_fifo(priority);
    match rc {
        Ok(()) => eprintln!("linkem: running at SCHED_FIFO priority {priority}"),
        Err(e) => eprintln!(
            "linkem: warning: cannot run at SCHED_FIFO priority {priority} ({e}); \
             wake-ups will be as late as the normal scheduler makes them (see late_max_ms in the stats)"
        ),
    }
}

/// Removes a leftover control socket of an earlier run; refuses to remove
/// anything that is not a socket.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))
        }
        Ok(_) => bail!(
            "control socket {}: exists and is not a socket",
            path.display()
        ),
        Err(_) => Ok(()),
    }
}

impl Lem {
    fn packet(&mut self) -> Packet {
        self.pool
            .pop()
            .unwrap_or_else(|| Packet::with_capacity(self.max_frame))
    }

    /// Reads what is waiting on socket `i` into direction `i`.
    fn receive(&mut self, i: usize) {
        let limit = self.socks[i ^ 1].mtu + ETH_HLEN + VLAN_HLEN;
        for _ in 0..RX_ROUNDS {
            let got = match self.socks[i].recv_batch(&mut self.rx) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("linkem: {}: receive: {e}", self.socks[i].ifname);
                    return;
                }
            };
            let t = now();
            let offset = sys::realtime_offset();
            for k in 0..got {
                let fresh = self.packet();
                let p = std::mem::replace(&mut self.rx[k], fresh);
                let d = &mut self.dirs[i];
                d.in_frames += 1;
                d.in_bytes += p.len() as u64;
                if p.truncated() || p.len() > limit {
                    d.model.count_drop(DropReason::Oversize);
                    if !self.warned_oversize[i] {
                        self.warned_oversize[i] = true;
                        eprintln!(
                            "linkem: warning: {}: dropped a {}-byte frame{}, larger than {} can send (MTU {}): \
                             a GSO/TSO/GRO super-frame; disable offloads: ethtool -K {} tso off gso off gro off \
                             (and on its veth peer)",
                            self.socks[i].ifname,
                            p.len(),
                            if p.is_gso() { " marked GSO" } else { "" },
                            self.socks[i ^ 1].ifname,
                            self.socks[i ^ 1].mtu,
                            self.socks[i].ifname,
                        );
                    }
                    self.pool.push(p);
                    continue;
                }
                let arrival = sys::stamp_to_monotonic(p.kernel_stamp(), offset, t);
                if let Verdict::Dropped(_, p) = d.model.arrive(arrival, p) {
                    self.pool.push(p);
                }
            }
            if got < self.rx.len() {
                return;
            }
        }
    }

    /// Sends every frame due at `t`.
    fn deliver(&mut self, t: Nanos) {
        for i in 0..self.dirs.len() {
            while let Some(p) = self.dirs[i].model.poll(t) {
                self.tx.push(p);
                if self.tx.len() == MAX_BATCH {
                    self.flush(i);
                }
            }
            self.flush(i);
        }
    }

    /// Sends `tx` out of direction `i`'s egress socket.
    fn flush(&mut self, i: usize) {
        let sock = &self.socks[i ^ 1];
        let mut off = 0;
        // Each round sends at least one frame or drops one: bounded by the batch.
        while off < self.tx.len() {
            match sock.send_batch(&mut self.tx[off..]) {
                Ok(k) if k > 0 => off += k,
                res => {
                    self.dirs[i].model.count_drop(DropReason::SendError);
                    if !self.warned_send[i ^ 1] {
                        self.warned_send[i ^ 1] = true;
                        let why = res
                            .err()
                            .map_or_else(|| "refused".to_owned(), |e| e.to_string());
                        eprintln!(
                            "linkem: warning: {}: send: {why} (counted as drop_send)",
                            sock.ifname
                        );
                    }
                    off += 1;
                }
            }
        }
        self.pool.append(&mut self.tx);
    }

    fn next_deadline(&self) -> Option<Nanos> {
        let model = self
            .dirs
            .iter()
            .filter_map(|d| d.model.next_deadline())
            .min();
        let event = self
            .config
            .events
            .get(self.next_event)
            .map(|e| self.start + e.at);
        match (model, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the scripted events due at `t`.
    fn run_events(&mut self, t: Nanos) {
        while let Some(e) = self.config.events.get(self.next_event) {
            if self.start + e.at > t {
                return;
            }
            let Event {
                at,
                path,
                dirs,
                change,
            } = e.clone();
            self.next_event += 1;
            eprintln!(
                "linkem: event at {}: {} {:?} {:?} (applied {} late)",
                Ms(at),
                self.config.paths[path].name,
                dirs,
                change,
                Ms(t - self.start - at)
            );
            self.apply(t, path, dirs, &change);
        }
    }

    fn apply(&mut self, t: Nanos, path: usize, dirs: Dirs, change: &Change) {
        for d in 0..2 {
            if !dirs.includes(d) {
                continue;
            }
            let model = &mut self.dirs[2 * path + d].model;
            match change {
                Change::Cut => {
                    let dropped: Vec<Packet> = model.cut(t).collect();
                    self.pool.extend(dropped);
                }
                Change::Restore => model.restore(t),
                c => {
                    if let Some(p) = c.apply(model.params()) {
                        model.set_params(t, p);
                    }
                }
            }
        }
    }

    /// One `key=value` line per path direction.
    fn stats_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, p) in self.config.paths.iter().enumerate() {
            for (d, name) in DIR_NAMES.iter().enumerate() {
                let dir = &self.dirs[2 * i + d];
                let s: &Stats = dir.model.stats();
                lines.push(format!(
                    "path={} dir={name} in_frames={} in_bytes={} out_frames={} out_bytes={} drop_loss={} \
                     drop_queue={} drop_cut={} drop_oversize={} drop_send={} queue_ms={:.3} queue_max_ms={:.3} \
                     late_ms={:.3} late_max_ms={:.3} late_over_1ms={} state={}",
                    p.name,
                    dir.in_frames,
                    dir.in_bytes,
                    s.forwarded_frames,
                    s.forwarded_bytes,
                    s.dropped(DropReason::Loss),
                    s.dropped(DropReason::Queue),
                    s.dropped(DropReason::Cut),
                    s.dropped(DropReason::Oversize),
                    s.dropped(DropReason::SendError),
                    s.queue_delay_mean() as f64 / 1e6,
                    s.queue_delay_max as f64 / 1e6,
                    s.late_mean() as f64 / 1e6,
                    s.late_max as f64 / 1e6,
                    s.late_notable,
                    if dir.model.is_cut() { "cut" } else { "up" },
                ));
            }
        }
        lines
    }

    fn accept(&mut self, listener: &UnixListener, epoll: &Epoll) {
        // Bounded: a burst of connections is taken a few at a time.
        for _ in 0..16 {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let slot = self
                .clients
                .iter()
                .position(Option::is_none)
                .unwrap_or_else(|| {
                    self.clients.push(None);
                    self.clients.len() - 1
                });
            let ev = EpollEvent::new(EpollFlags::EPOLLIN, TOKEN_CLIENT + slot as u64);
            if epoll.add(stream.as_fd(), ev).is_ok() {
                self.clients[slot] = Some(Client {
                    stream,
                    buf: Vec::new(),
                });
            }
        }
    }

    fn client_readable(&mut self, slot: usize, epoll: &Epoll) {
        let Some(Some(c)) = self.clients.get_mut(slot) else {
            return;
        };
        let mut chunk = [0u8; 512];
        let eof = match c.stream.read(&mut chunk) {
            Ok(0) => true,
            Ok(k) => {
                c.buf.extend_from_slice(&chunk[..k]);
                false
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return
            }
            Err(_) => true,
        };
        let line_end = c.buf.iter().position(|&b| b == b'\n');
        if line_end.is_none() && !eof && c.buf.len() < MAX_REQUEST {
            return;
        }
        let Some(Client { stream, buf }) = self.clients[slot].take() else {
            return;
        };
        let _ = epoll.delete(stream.as_fd());
        let request = String::from_utf8_lossy(&buf[..line_end.unwrap_or(buf.len())]).into_owned();
        let reply = if line_end.is_none() && buf.len() >= MAX_REQUEST {
            format!("error: request longer than {MAX_REQUEST} bytes\n")
        } else {
            self.control(request.trim())
        };
        let mut stream = stream;
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
        let _ = stream.write_all(reply.as_bytes());
    }

    /// Runs one control request; the reply ends with `ok` or `error: ...`.
    fn control(&mut self, request: &str) -> String {
        match command::parse(request) {
            Err(e) => format!("error: {e}\n"),
            Ok(Command::Help) => format!("{}\nok\n", command::COMMANDS),
            Ok(Command::Stats) => {
                let mut s = self.stats_lines().join("\n");
                s.push_str("\nok\n");
                s
            }
            Ok(Command::Apply {
                path,
                dirs,
                changes,
            }) => {
                let Some(i) = self.config.paths.iter().position(|p| p.name == path) else {
                    let known: Vec<&str> =
                        self.config.paths.iter().map(|p| p.name.as_str()).collect();
                    return format!(
                        "error: no path is named {path:?}; paths: {}\n",
                        known.join(", ")
                    );
                };
                let t = now();
                for c in &changes {
                    self.apply(t, i, dirs, c);
                }
                eprintln!("linkem: control: {request}");
                "ok\n".to_owned()
            }
        }
    }
}

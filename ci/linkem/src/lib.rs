//! braid-linkem: a user-space WAN link emulator for braid's integration tests
//! and benchmarks. The test hosts' kernels have veth, network namespaces and
//! AF_PACKET but no netem (`tc qdisc ... netem` is not built), so the links
//! with rate, delay, jitter and loss that the multipath tunnel must be tested
//! over are emulated here: linkem sits in a namespace between two veth ends
//! per path, reads every frame with a packet socket, runs it through a model
//! of the link, and writes it out of the other side when the model says so.
//!
//! Layers, each in its own module:
//! - [`units`]: the text syntax of rates, durations, losses and queue limits;
//! - [`model`]: the link model of one direction, sans-IO and exactly testable;
//! - [`command`]: the changes a running link accepts (config events, control socket);
//! - [`config`]: the TOML file;
//! - [`sys`]: the packet sockets and real-time scheduling (the only `unsafe` code);
//! - [`shell`]: the single-threaded event loop that ties them to the clock.

pub mod command;
pub mod config;
pub mod model;
pub mod shell;
pub mod sys;
pub mod units;

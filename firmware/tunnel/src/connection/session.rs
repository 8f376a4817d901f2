//! The keys of a connection: the current session, the one before it (packets
//! still in flight after a rekey), and on the responder the next one, which it
//! may only send with once the initiator has used it (WireGuard's rule: until
//! then the initiator might not have the response).

use core::time::Duration;

use crate::crypto::{OpenError, OpeningKey, SealingKey};
use crate::handshake::SessionKeys;
use crate::time::Instant;
use crate::wire::{TransportPacket, TransportRepr};

use super::REJECT_AFTER;

pub(super) struct Session {
    seal: SealingKey,
    open: OpeningKey,
    local_index: u32,
    started: Instant,
    initiator: bool,
}

#[derive(Default)]
pub(super) struct Sessions {
    current: Option<Session>,
    previous: Option<Session>,
    next: Option<Session>,
}

impl Sessions {
    /// Installs fresh keys: the initiator uses them at once; the responder keeps
    /// them as `next` until a packet arrives under them.
    pub fn install(&mut self, keys: SessionKeys, now: Instant) {
        let s = Session {
            seal: SealingKey::new(keys.send, keys.remote_index),
            open: OpeningKey::new(keys.recv, keys.local_index),
            local_index: keys.local_index,
            started: now,
            initiator: keys.initiator,
        };
        if keys.initiator {
            self.previous = self.current.take();
            self.current = Some(s);
        } else {
            self.next = Some(s);
        }
    }

    pub fn current(&self) -> Option<&SealingKey> {
        self.current.as_ref().map(|s| &s.seal)
    }

    /// When the key this side initiated was established (for rekeying).
    pub fn current_age_start(&self) -> Option<Instant> {
        self.current
            .as_ref()
            .filter(|s| s.initiator)
            .map(|s| s.started)
    }

    pub fn indexes(&self) -> impl Iterator<Item = u32> + '_ {
        [&self.current, &self.previous, &self.next]
            .into_iter()
            .flatten()
            .map(|s| s.local_index)
    }

    /// Drops keys past their lifetime.
    pub fn expire(&mut self, now: Instant) {
        let old = |s: &Option<Session>| {
            s.as_ref()
                .is_some_and(|s| now.saturating_since(s.started) > REJECT_AFTER)
        };
        if old(&self.current) {
            self.current = None;
        }
        if old(&self.previous) {
            self.previous = None;
        }
        if self
            .next
            .as_ref()
            .is_some_and(|s| now.saturating_since(s.started) > Duration::from_secs(30))
        {
            self.next = None;
        }
    }

    pub fn seal(&mut self, path: u8, data: &mut [u8], plain_len: usize) -> Option<usize> {
        self.current.as_mut()?.seal.seal(path, data, plain_len).ok()
    }

    /// Opens a transport datagram with whichever session it is addressed to;
    /// returns (path, counter, plaintext length).
    pub fn open(
        &mut self,
        now: Instant,
        datagram: &mut [u8],
    ) -> Result<(u8, u64, usize), OpenError> {
        self.expire(now);
        let index = TransportPacket::new_checked(&*datagram)
            .map(|p| TransportRepr::parse(&p).receiver_index)
            .map_err(OpenError::Malformed)?;
        let promote = self.next.as_ref().is_some_and(|s| s.local_index == index);
        let session = [&mut self.current, &mut self.previous, &mut self.next]
            .into_iter()
            .flatten()
            .find(|s| s.local_index == index)
            .ok_or(OpenError::WrongSession(index))?;
        let o = session.open.open(datagram)?;
        let out = (o.path, o.counter, o.plaintext.len());
        if promote {
            self.previous = self.current.take();
            self.current = self.next.take();
        }
        Ok(out)
    }
}

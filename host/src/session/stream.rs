//! One stream of a session: the events for one POST (or the standalone GET stream), a bounded replay buffer,
//! and at most one live connection reading it.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::Limits;

/// A stream's number within its session. Event ids on the wire are `<stream>-<seq>`.
pub type StreamId = u64;

/// The standalone stream (GET), which also carries everything on a legacy SSE session.
pub const STANDALONE: StreamId = 0;

/// One event for a connection: a JSON-RPC message with its sequence number in the stream.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub seq: u64,
    pub bytes: Bytes,
    /// The stream is finished after this event (its last response was delivered).
    pub last: bool,
}

pub(super) struct Stream {
    pub standalone: bool,
    events: VecDeque<Delivery>,
    event_bytes: usize,
    next_seq: u64,
    /// The highest sequence number handed to a live connection.
    delivered: u64,
    pub live: Option<mpsc::Sender<Delivery>>,
    /// Requests on this stream still waiting for their response.
    pub open_requests: usize,
    pub finished: bool,
}

impl Stream {
    pub fn new(standalone: bool) -> Self {
        Self {
            standalone,
            events: VecDeque::new(),
            event_bytes: 0,
            next_seq: 1,
            delivered: 0,
            live: None,
            open_requests: 0,
            finished: false,
        }
    }

    pub fn buffered(&self) -> usize {
        self.events.len()
    }

    /// Appends an event and hands it to the live connection. Returns true if the connection could not keep up
    /// and was cut (the event stays in the replay buffer).
    pub fn push(&mut self, bytes: Bytes, last: bool, limits: &Limits) -> bool {
        let delivery = Delivery {
            seq: self.next_seq,
            bytes,
            last,
        };
        self.next_seq += 1;
        self.event_bytes += delivery.bytes.len();
        self.events.push_back(delivery.clone());
        while self.events.len() > 1
            && (self.events.len() > limits.replay_events || self.event_bytes > limits.replay_bytes)
        {
            if let Some(old) = self.events.pop_front() {
                self.event_bytes -= old.bytes.len();
            }
        }
        let mut overflowed = false;
        if let Some(live) = &self.live {
            let seq = delivery.seq;
            match live.try_send(delivery) {
                Ok(()) => self.delivered = seq,
                Err(TrySendError::Full(_)) => {
                    overflowed = true;
                    self.live = None;
                }
                Err(TrySendError::Closed(_)) => self.live = None,
            }
        }
        if last {
            self.finished = true;
            self.live = None;
        }
        overflowed
    }

    /// The buffered events after `after`, or, without it, those no connection has been handed yet.
    pub fn replay_after(&mut self, after: Option<u64>) -> Vec<Delivery> {
        let from = after.unwrap_or(self.delivered);
        let events: Vec<Delivery> = self
            .events
            .iter()
            .filter(|d| d.seq > from)
            .cloned()
            .collect();
        if let Some(last) = events.last() {
            self.delivered = self.delivered.max(last.seq);
        }
        events
    }
}

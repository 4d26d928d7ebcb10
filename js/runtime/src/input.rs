//! Standard input, waited on together with the clock: the event loop blocks for the next chunk of stdin or the
//! next timer, whichever comes first, so timers fire while the server waits for a request.
//!
//! On WASI (the target this crate is for) that is one `poll_oneoff` on stdin and a relative clock. Elsewhere (the
//! crate's own tests on the host) a thread reads stdin into a channel, and the loop waits on the channel.

use std::io::Read;
use std::time::Duration;

/// What waiting for input gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Data(Vec<u8>),
    /// Standard input ended.
    End,
    /// The wait's time was up first.
    Timeout,
}

/// How much one read takes at most.
const CHUNK: usize = 64 * 1024;

#[cfg(target_os = "wasi")]
pub struct Stdin;

#[cfg(target_os = "wasi")]
impl Stdin {
    pub fn new() -> Self {
        Self
    }

    /// The next chunk of stdin, waiting at most `timeout` (`None`: until there is one).
    pub fn next(&mut self, timeout: Option<Duration>) -> std::io::Result<Input> {
        if !readable(timeout)? {
            return Ok(Input::Timeout);
        }
        let mut chunk = vec![0; CHUNK];
        let read = std::io::stdin().read(&mut chunk)?;
        if read == 0 {
            return Ok(Input::End);
        }
        chunk.truncate(read);
        Ok(Input::Data(chunk))
    }
}

/// Whether stdin became readable (or reached its end) within `timeout`.
#[cfg(target_os = "wasi")]
#[allow(unsafe_code)]
fn readable(timeout: Option<Duration>) -> std::io::Result<bool> {
    const STDIN: u64 = 0;
    const CLOCK: u64 = 1;
    let mut subscriptions = vec![wasi::Subscription {
        userdata: STDIN,
        u: wasi::SubscriptionU {
            tag: wasi::EVENTTYPE_FD_READ.raw(),
            u: wasi::SubscriptionUU {
                fd_read: wasi::SubscriptionFdReadwrite { file_descriptor: 0 },
            },
        },
    }];
    if let Some(timeout) = timeout {
        subscriptions.push(wasi::Subscription {
            userdata: CLOCK,
            u: wasi::SubscriptionU {
                tag: wasi::EVENTTYPE_CLOCK.raw(),
                u: wasi::SubscriptionUU {
                    clock: wasi::SubscriptionClock {
                        id: wasi::CLOCKID_MONOTONIC,
                        timeout: u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
                        precision: 0,
                        flags: 0,
                    },
                },
            },
        });
    }
    let empty = wasi::Event {
        userdata: 0,
        error: wasi::ERRNO_SUCCESS,
        type_: wasi::EVENTTYPE_CLOCK,
        fd_readwrite: wasi::EventFdReadwrite {
            nbytes: 0,
            flags: 0,
        },
    };
    let mut events = [empty; 2];
    // SAFETY: `subscriptions` holds `subscriptions.len()` initialized subscriptions, and `events` has room for
    // as many events (at most 2), which is all `poll_oneoff` writes.
    let happened = unsafe {
        wasi::poll_oneoff(
            subscriptions.as_ptr(),
            events.as_mut_ptr(),
            subscriptions.len(),
        )
    }
    .map_err(|errno| std::io::Error::from_raw_os_error(i32::from(errno.raw())))?;
    Ok(events[..happened].iter().any(|e| e.userdata == STDIN))
}

#[cfg(not(target_os = "wasi"))]
pub struct Stdin(std::sync::mpsc::Receiver<Input>);

#[cfg(not(target_os = "wasi"))]
impl Stdin {
    pub fn new() -> Self {
        let (chunks, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            loop {
                let mut chunk = vec![0; CHUNK];
                match stdin.read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        let _ = chunks.send(Input::End);
                        return;
                    }
                    Ok(read) => {
                        chunk.truncate(read);
                        if chunks.send(Input::Data(chunk)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self(received)
    }

    pub fn next(&mut self, timeout: Option<Duration>) -> std::io::Result<Input> {
        use std::sync::mpsc::RecvTimeoutError;
        Ok(match timeout {
            None => self.0.recv().unwrap_or(Input::End),
            Some(timeout) => match self.0.recv_timeout(timeout) {
                Ok(input) => input,
                Err(RecvTimeoutError::Timeout) => Input::Timeout,
                Err(RecvTimeoutError::Disconnected) => Input::End,
            },
        })
    }
}

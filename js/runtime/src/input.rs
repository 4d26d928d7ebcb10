//! Standard input, waited on together with the clock: the event loop blocks for the next chunk of stdin or the
//! next timer, whichever comes first, so timers fire while the server waits for a request.
//!
//! On WASI (the target this crate is for) that is catwalk's `wait`, which watches stdin, the guest's HTTP
//! requests and the clock together. Elsewhere (the crate's own tests on the host) a thread reads stdin into a
//! channel, and the loop waits on the channel.

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
    /// An HTTP request made progress.
    Http,
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

    /// The next chunk of stdin (when `listen`), or progress of an HTTP request (when `http`), waiting at most
    /// `timeout` (`None`: until one comes). catwalk's `wait` watches both at once.
    pub fn next(
        &mut self,
        listen: bool,
        http: bool,
        timeout: Option<Duration>,
    ) -> std::io::Result<Input> {
        let mask =
            if listen { crate::net::STDIN } else { 0 } | if http { crate::net::HTTP } else { 0 };
        if mask == 0 {
            std::thread::sleep(timeout.unwrap_or(Duration::ZERO));
            return Ok(Input::Timeout);
        }
        let ready = crate::net::wait(mask, timeout);
        if ready & crate::net::STDIN == 0 {
            return Ok(if ready & crate::net::HTTP != 0 {
                Input::Http
            } else {
                Input::Timeout
            });
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

    pub fn next(
        &mut self,
        listen: bool,
        _http: bool,
        timeout: Option<Duration>,
    ) -> std::io::Result<Input> {
        use std::sync::mpsc::RecvTimeoutError;
        if !listen {
            std::thread::sleep(timeout.unwrap_or(Duration::ZERO));
            return Ok(Input::Timeout);
        }
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

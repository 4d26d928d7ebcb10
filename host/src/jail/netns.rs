//! Network namespaces of catwalk's making: only loopback inside, and sockets catwalk listens on in there.
//!
//! A namespace is made on a thread of its own (`unshare(CLONE_NEWNET)` moves only the calling thread), which
//! brings its loopback up, opens the listeners it is asked for, and ends. The namespace lives on as long as
//! its file ([`Netns`]) or one of those sockets is open: catwalk serves the sockets from its own namespace,
//! and a tenant's child joins the namespace by its file (`catwalk confine --netns`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use nix::sched::{CloneFlags, unshare};

/// A network namespace, held open.
#[derive(Debug)]
pub struct Netns {
    file: File,
}

impl Netns {
    /// Makes a namespace with loopback up and runs `inside` in it, on a thread of its own; returns the
    /// namespace and what `inside` made there (its sockets stay in the namespace).
    pub fn create<T: Send>(
        inside: impl FnOnce() -> std::io::Result<T> + Send,
    ) -> std::io::Result<(Self, T)> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let step = |what: &str| {
                        let what = what.to_owned();
                        move |e: std::io::Error| {
                            std::io::Error::new(e.kind(), format!("{what}: {e}"))
                        }
                    };
                    unshare(CloneFlags::CLONE_NEWNET)
                        .map_err(std::io::Error::from)
                        .map_err(step("unshare(CLONE_NEWNET), which needs CAP_SYS_ADMIN"))?;
                    let file = File::open("/proc/thread-self/ns/net")?;
                    loopback_up()
                        .map_err(step("bringing its loopback up, which needs CAP_NET_ADMIN"))?;
                    let made = inside()?;
                    Ok((Self { file }, made))
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
        })
    }

    /// A path to the namespace that a helper running as root can open while catwalk holds it.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.file.as_raw_fd()
        ))
    }
}

/// Sets `lo` up in the calling thread's namespace: its addresses (127.0.0.1/8, ::1) come with it.
#[allow(unsafe_code)]
fn loopback_up() -> std::io::Result<()> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: `ifreq` is plain data, zeroed is a valid value; the ioctls read and write only `request`, which
    // outlives them, on a socket this function owns.
    unsafe {
        let mut request: libc::ifreq = std::mem::zeroed();
        for (to, from) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *to = *from as libc::c_char;
        }
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

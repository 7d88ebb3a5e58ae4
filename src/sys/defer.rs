//! `TCP_DEFER_ACCEPT`, which neither socket2 nor nix offers: one `setsockopt` with an int.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Holds connections back from `accept` until their first bytes arrive (or `secs` of SYN-ACK
/// retransmissions pass, after which the kernel hands them over anyway).
pub fn defer_accept(socket: &impl AsFd, secs: u32) -> io::Result<()> {
    let value = nix::libc::c_int::try_from(secs).unwrap_or(nix::libc::c_int::MAX);
    // SAFETY: the descriptor is borrowed for the call and the option value is a live c_int
    // whose size is passed alongside it.
    let rc = unsafe {
        nix::libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            nix::libc::IPPROTO_TCP,
            nix::libc::TCP_DEFER_ACCEPT,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of_val(&value) as nix::libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

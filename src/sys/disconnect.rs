//! A TCP socket taken back to "unconnected" (`connect` with `AF_UNSPEC`), which neither socket2
//! nor nix offers safely: the peer gets the same RST as from a close with linger 0, and the
//! socket can connect again, so a keyed sweep need not make and close one per port.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Resets `socket`'s connection and returns it to the unconnected state (Linux; its
/// automatically bound source port is released with it).
pub fn disconnect(socket: &impl AsFd) -> io::Result<()> {
    let unspec = nix::libc::sockaddr {
        sa_family: nix::libc::AF_UNSPEC as nix::libc::sa_family_t,
        sa_data: [0; 14],
    };
    // SAFETY: the descriptor is borrowed for the call and the address is a live sockaddr
    // whose size is passed alongside it.
    let rc = unsafe {
        nix::libc::connect(
            socket.as_fd().as_raw_fd(),
            std::ptr::addr_of!(unspec),
            std::mem::size_of_val(&unspec) as nix::libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

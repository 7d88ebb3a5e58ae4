//! Port owners on Linux: /proc/net tables for the socket's inode, then /proc/PID/fd for the
//! process that has it open (within this network namespace).

use super::Holder;

/// Which process holds UDP `addr` on this machine, where the OS tells (Linux: /proc, within
/// this network namespace). `None`: free, or not readable here.
pub fn udp_holder(addr: std::net::SocketAddr) -> Option<Holder> {
    (0..LOOKUPS).find_map(|_| socket_holder(udp_inode(addr)?))
}

/// Lookups before a port's holder is given up. The caller knows the port is taken (its bind
/// failed), but a lookup can still miss: a /proc/net table longer than one read (about 31
/// sockets) is walked again for each read, and sockets opened or closed between reads move
/// the walk past lines; reading /proc ends early when a process exits under the cursor (the
/// directory iterator stops at its first error). Each miss is a few percent on a busy
/// machine, so a miss is tried again.
const LOOKUPS: usize = 5;

/// The process with the socket `inode` open, from one pass over /proc. Processes in this
/// network namespace go first: the socket is in it, and a process elsewhere holds it only if
/// it moved after binding. Where other namespaces hold many sockets (containers, a test lab
/// with a full-range `serve`), a pass in /proc's order spent seconds reading their
/// descriptors under load before it reached the holder, and the lookup's deadline ended it.
fn socket_holder(inode: u64) -> Option<Holder> {
    let wanted = format!("socket:[{inode}]");
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    let net = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let ours = net("self");
    let (here, elsewhere): (Vec<u32>, Vec<u32>) = pids
        .into_iter()
        .partition(|pid| ours.is_some() && net(&pid.to_string()) == ours);
    here.into_iter()
        .chain(elsewhere)
        .find_map(|pid| holds(pid, &wanted))
}

/// `pid` as the holder, if it has `wanted` (`socket:[inode]`) open.
fn holds(pid: u32, wanted: &str) -> Option<Holder> {
    let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let fds = std::fs::read_dir(dir.join("fd")).ok()?;
    let holds = fds
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted));
    if !holds {
        return None;
    }
    let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
    // Any process names itself (prctl PR_SET_NAME): escapes included.
    Some(Holder {
        pid,
        name: crate::model::defang(name.trim()),
    })
}

/// Which process listens on TCP `port` here (any local address; Linux: /proc, within this
/// network namespace).
pub fn tcp_listener(port: u16) -> Option<Holder> {
    let port = format!("{port:04X}");
    // State 0A: LISTEN.
    let inode = || {
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .find_map(|table| table_inode(table, |_, p, state| p == port && state == "0A"))
    };
    (0..LOOKUPS).find_map(|_| socket_holder(inode()?))
}

/// The inode of the UDP socket bound to `addr`'s port on its address or the wildcard, from
/// /proc/net/udp or udp6 (addresses as the kernel prints them: hex, host byte order per word).
fn udp_inode(addr: std::net::SocketAddr) -> Option<u64> {
    let port = format!("{:04X}", addr.port());
    let table = if addr.is_ipv4() {
        "/proc/net/udp"
    } else {
        "/proc/net/udp6"
    };
    let ours = kernel_hex(addr.ip());
    let any = kernel_hex(match addr.ip() {
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    });
    table_inode(table, |ip, p, _| (ip == ours || ip == any) && p == port)
}

/// The inode of the first socket in a /proc/net table whose local address, port (both as
/// the kernel prints them) and state `wanted` accepts.
fn table_inode(table: &str, wanted: impl Fn(&str, &str, &str) -> bool) -> Option<u64> {
    let text = read_table(table)?;
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (ip, port) = fields.get(1)?.split_once(':')?;
        wanted(ip, port, fields.get(3)?).then(|| fields.get(9)?.parse().ok())?
    })
}

/// A /proc/net table as text, in reads as large as a table of this size needs. The kernel
/// walks the table again for each `read`, and a socket opened or closed between two reads
/// (by anyone, in any namespace: the hash table is shared) can move the walk past a line;
/// `fs::read_to_string` starts with 32-byte reads, a dozen walks for a few lines.
fn read_table(table: &str) -> Option<String> {
    use std::io::Read as _;
    // With room reserved, std reads into it whole instead of probing with small reads.
    let mut text = String::with_capacity(TABLE_READ);
    std::fs::File::open(table)
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Room reserved for a /proc/net table: 500 sockets' lines (the kernel hands out about 31
/// a read).
const TABLE_READ: usize = 64 * 1024;

fn kernel_hex(ip: std::net::IpAddr) -> String {
    let bytes: Vec<u8> = match ip {
        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    // Each 32-bit word in the kernel's (little-endian) byte order.
    let mut hex = String::with_capacity(bytes.len() * 2);
    for word in bytes.chunks(4) {
        for b in word.iter().rev() {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02X}");
        }
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_of_a_udp_port_is_found_in_proc() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let holder = udp_holder(addr).expect("this process holds it");
        assert_eq!(holder.pid, std::process::id());
        drop(socket);
        assert!(udp_holder(addr).is_none());
    }

    /// /proc/net tables are read a chunk at a time, and the kernel walks the table again for
    /// each chunk: sockets opened and closed meanwhile (other programs, other namespaces)
    /// moved the walk past the holder's line, and a port in use was reported without its
    /// holder (a lab test failed 13 of 150 runs).
    #[test]
    fn the_holder_is_found_while_other_sockets_come_and_go() {
        // More lines than one read returns (a page, about 31): the table takes several walks.
        let crowd: Vec<_> = (0..100)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let held: Vec<_> = (0..8)
                        .filter_map(|_| std::net::UdpSocket::bind("127.0.0.1:0").ok())
                        .collect();
                    drop(held);
                }
            })
        };
        let missed = (0..300).filter(|_| udp_holder(addr).is_none()).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
        drop(crowd);
        assert_eq!(
            missed, 0,
            "the holder was missed in {missed} of 300 lookups"
        );
    }
}

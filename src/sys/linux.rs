//! Port owners on Linux: /proc/net tables for the socket's inode, then /proc/PID/fd for the
//! process that has it open (within this network namespace).

use super::Holder;

/// Which process holds UDP `addr` on this machine, where the OS tells (Linux: /proc, within
/// this network namespace). `None`: free, or not readable here.
pub fn udp_holder(addr: std::net::SocketAddr) -> Option<Holder> {
    let inode = udp_inode(addr)?;
    // Reading /proc ends early when a process exits under the cursor (the directory iterator
    // stops at its first error), so a miss on a busy machine is tried again.
    (0..3).find_map(|_| socket_holder(inode))
}

/// The process with the socket `inode` open, from one pass over /proc.
fn socket_holder(inode: u64) -> Option<Holder> {
    let wanted = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
        });
        if holds {
            let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            // Any process names itself (prctl PR_SET_NAME): escapes included.
            return Some(Holder {
                pid,
                name: crate::model::defang(name.trim()),
            });
        }
    }
    None
}

/// Which process listens on TCP `port` here (any local address; Linux: /proc, within this
/// network namespace).
pub fn tcp_listener(port: u16) -> Option<Holder> {
    let port = format!("{port:04X}");
    // State 0A: LISTEN.
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| table_inode(table, |_, p, state| p == port && state == "0A"))?;
    (0..3).find_map(|_| socket_holder(inode))
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
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (ip, port) = fields.get(1)?.split_once(':')?;
        wanted(ip, port, fields.get(3)?).then(|| fields.get(9)?.parse().ok())?
    })
}

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

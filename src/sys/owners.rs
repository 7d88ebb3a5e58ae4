//! The IP Helper owner tables (`MIB_UDPTABLE_OWNER_PID` and kin) read from their bytes: a u32
//! count, then rows of u32 fields and 16-byte IPv6 addresses. Parsed by offset, without
//! casting pointers, so it is tested on every platform (`windows.rs` fetches the bytes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One row of an owner table, as far as we need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Row {
    pub(super) addr: IpAddr,
    pub(super) port: u16,
    pub(super) pid: u32,
}

/// The layout of a table's rows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Table {
    /// `MIB_UDPROW_OWNER_PID`: local address, local port, PID.
    Udp4,
    /// `MIB_UDP6ROW_OWNER_PID`: local address (16), scope, local port, PID.
    Udp6,
    /// `MIB_TCPROW_OWNER_PID`: state, local address, local port, remote address, remote
    /// port, PID.
    Tcp4,
    /// `MIB_TCP6ROW_OWNER_PID`: local address (16), scope, local port, remote address (16),
    /// remote scope, remote port, state, PID.
    Tcp6,
}

impl Table {
    /// Row size, and the offsets of the local address, local port and PID.
    fn layout(self) -> (usize, usize, usize, usize) {
        match self {
            Table::Udp4 => (12, 0, 4, 8),
            Table::Udp6 => (28, 0, 20, 24),
            Table::Tcp4 => (24, 4, 8, 20),
            Table::Tcp6 => (56, 0, 20, 52),
        }
    }

    fn v6(self) -> bool {
        matches!(self, Table::Udp6 | Table::Tcp6)
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// The rows of `bytes` as the API wrote them (native byte order; addresses and ports in
/// network order). A row with PID 0 has no owner the system would tell (Wine reports every
/// owner so), and is dropped: its holder is unknown, not "process 0".
pub(super) fn parse(bytes: &[u8], table: Table) -> Vec<Row> {
    if bytes.len() < 4 {
        return Vec::new();
    }
    let count = u32_at(bytes, 0) as usize;
    let (size, addr, port, pid) = table.layout();
    (0..count)
        .map_while(|i| bytes.get(4 + i * size..4 + (i + 1) * size))
        .map(|row| Row {
            addr: if table.v6() {
                let octets: [u8; 16] = row[addr..addr + 16].try_into().expect("16 bytes");
                Ipv6Addr::from(octets).into()
            } else {
                let octets: [u8; 4] = row[addr..addr + 4].try_into().expect("4 bytes");
                Ipv4Addr::from(octets).into()
            },
            // The port is in network byte order in the field's first two bytes.
            port: u16::from_be_bytes([row[port], row[port + 1]]),
            pid: u32_at(row, pid),
        })
        .filter(|r| r.pid != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table as Windows writes it: count, then rows built by `row`.
    fn table(rows: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = (rows.len() as u32).to_ne_bytes().to_vec();
        for r in rows {
            bytes.extend_from_slice(r);
        }
        bytes
    }

    fn port_field(port: u16) -> [u8; 4] {
        let mut f = [0u8; 4];
        f[..2].copy_from_slice(&port.to_be_bytes());
        f
    }

    #[test]
    fn reads_each_table_layout() {
        let mut udp4 = vec![127, 0, 0, 1];
        udp4.extend(port_field(42000));
        udp4.extend(4242u32.to_ne_bytes());
        let mut orphan = vec![0, 0, 0, 0];
        orphan.extend(port_field(75));
        orphan.extend(0u32.to_ne_bytes());
        assert_eq!(
            parse(&table(&[udp4, orphan]), Table::Udp4),
            vec![Row {
                addr: "127.0.0.1".parse().unwrap(),
                port: 42000,
                pid: 4242
            }]
        );

        let mut udp6 = "::1".parse::<Ipv6Addr>().unwrap().octets().to_vec();
        udp6.extend(0u32.to_ne_bytes());
        udp6.extend(port_field(42000));
        udp6.extend(77u32.to_ne_bytes());
        assert_eq!(
            parse(&table(&[udp6]), Table::Udp6)[0].addr,
            "::1".parse::<IpAddr>().unwrap()
        );

        let mut tcp4 = 2u32.to_ne_bytes().to_vec(); // LISTEN
        tcp4.extend([0, 0, 0, 0]);
        tcp4.extend(port_field(443));
        tcp4.extend([0u8; 8]);
        tcp4.extend(4u32.to_ne_bytes());
        let row = parse(&table(&[tcp4]), Table::Tcp4)[0];
        assert_eq!((row.port, row.pid), (443, 4));

        let mut tcp6 = [0u8; 16].to_vec();
        tcp6.extend(0u32.to_ne_bytes());
        tcp6.extend(port_field(8484));
        tcp6.extend([0u8; 16 + 4 + 4]);
        tcp6.extend(2u32.to_ne_bytes());
        tcp6.extend(900u32.to_ne_bytes());
        let row = parse(&table(&[tcp6]), Table::Tcp6)[0];
        assert_eq!((row.port, row.pid), (8484, 900));
        // A count larger than the bytes hold reads what is there.
        let mut short = table(&[]);
        short[..4].copy_from_slice(&9u32.to_ne_bytes());
        assert!(parse(&short, Table::Udp4).is_empty());
        assert!(parse(&[1], Table::Udp4).is_empty());
    }
}

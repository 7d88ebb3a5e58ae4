//! Port owners on Windows: the IP Helper tables with owning PIDs (`GetExtendedUdpTable`,
//! `GetExtendedTcpTable`), and the image name from a process snapshot (Toolhelp), which,
//! unlike opening the process, also names a service running as SYSTEM to a user who is not
//! an administrator: the agent's `LTSVC.exe` is exactly that.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE, NO_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, GetExtendedUdpTable, TCP_TABLE_OWNER_PID_LISTENER, UDP_TABLE_OWNER_PID,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Process32FirstW, Process32NextW, PROCESSENTRY32W, TH32CS_SNAPPROCESS,
};

use super::owners::{parse, Table};
use super::Holder;

/// Which process holds UDP `addr` (its address or the wildcard).
pub fn udp_holder(addr: SocketAddr) -> Option<Holder> {
    let any: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let rows = if addr.is_ipv4() {
        parse(&udp(AF_INET), Table::Udp4)
    } else {
        parse(&udp(AF_INET6), Table::Udp6)
    };
    let row = rows
        .into_iter()
        .find(|r| r.port == addr.port() && (r.addr == addr.ip() || r.addr == any))?;
    Some(holder(row.pid))
}

/// Which process listens on TCP `port` (any local address, either family).
pub fn tcp_listener(port: u16) -> Option<Holder> {
    let row = parse(&tcp(AF_INET), Table::Tcp4)
        .into_iter()
        .chain(parse(&tcp(AF_INET6), Table::Tcp6))
        .find(|r| r.port == port)?;
    Some(holder(row.pid))
}

/// The table `fetch` fills: asked once for its size, then read (again if it grew between).
fn fetch_table(fetch: impl Fn(*mut core::ffi::c_void, &mut u32) -> u32) -> Vec<u8> {
    let mut size = 0u32;
    fetch(std::ptr::null_mut(), &mut size);
    for _ in 0..4 {
        // u32-aligned storage: the tables are a u32 count, then rows of u32 fields.
        let mut buf = vec![0u32; (size as usize).div_ceil(4) + 64];
        let mut len = (buf.len() * 4) as u32;
        if fetch(buf.as_mut_ptr().cast(), &mut len) == NO_ERROR {
            return buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        }
        size = len;
    }
    Vec::new()
}

fn udp(family: u16) -> Vec<u8> {
    // SAFETY: the buffer and its length come from fetch_table, as the API asks.
    fetch_table(|p, len| unsafe {
        GetExtendedUdpTable(p, len, 0, u32::from(family), UDP_TABLE_OWNER_PID, 0)
    })
}

fn tcp(family: u16) -> Vec<u8> {
    // SAFETY: the buffer and its length come from fetch_table, as the API asks.
    fetch_table(|p, len| unsafe {
        GetExtendedTcpTable(
            p,
            len,
            0,
            u32::from(family),
            TCP_TABLE_OWNER_PID_LISTENER,
            0,
        )
    })
}

/// The process `pid` with its image name (`LTSVC.exe`); PID 4 is the kernel ("System"),
/// which holds ports for HTTP.sys (IIS) among others.
fn holder(pid: u32) -> Holder {
    let name = image_name(pid).unwrap_or_else(|| match pid {
        4 => "System".to_string(),
        _ => "an unnamed process".to_string(),
    });
    // Any program picks its own file name.
    Holder {
        pid,
        name: crate::model::defang(&name),
    }
}

fn image_name(pid: u32) -> Option<String> {
    // SAFETY: a snapshot handle is closed on every path; the entry is sized as the API asks.
    unsafe {
        let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
        if snapshot == INVALID_HANDLE_VALUE {
            return None;
        }
        let mut entry = PROCESSENTRY32W {
            dwSize: std::mem::size_of::<PROCESSENTRY32W>() as u32,
            ..Default::default()
        };
        let mut found = None;
        let mut more = Process32FirstW(snapshot, &raw mut entry) != 0;
        while more {
            if entry.th32ProcessID == pid {
                let len = entry
                    .szExeFile
                    .iter()
                    .position(|&c| c == 0)
                    .unwrap_or(entry.szExeFile.len());
                found = Some(String::from_utf16_lossy(&entry.szExeFile[..len]));
                break;
            }
            more = Process32NextW(snapshot, &raw mut entry) != 0;
        }
        CloseHandle(snapshot);
        found
    }
}

/// A service's state from the Service Control Manager (a number, the same on every Windows
/// in every language; `sc.exe` prints translated text).
pub fn service_state(name: &str) -> super::ServiceState {
    use super::ServiceState;
    use windows_sys::Win32::Foundation::{GetLastError, ERROR_SERVICE_DOES_NOT_EXIST};
    use windows_sys::Win32::System::Services::{
        CloseServiceHandle, OpenSCManagerW, OpenServiceW, QueryServiceStatus, SC_MANAGER_CONNECT,
        SERVICE_QUERY_STATUS, SERVICE_STATUS,
    };
    let wide: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: every handle opened here is closed on every path; the name is NUL-terminated.
    unsafe {
        let manager = OpenSCManagerW(std::ptr::null(), std::ptr::null(), SC_MANAGER_CONNECT);
        if manager.is_null() {
            return ServiceState::Unknown;
        }
        let service = OpenServiceW(manager, wide.as_ptr(), SERVICE_QUERY_STATUS);
        let state = if service.is_null() {
            if GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST {
                ServiceState::NotInstalled
            } else {
                ServiceState::Unknown
            }
        } else {
            let mut status = SERVICE_STATUS::default();
            let state = if QueryServiceStatus(service, &raw mut status) == 0 {
                ServiceState::Unknown
            } else {
                ServiceState::from_code(status.dwCurrentState)
            };
            CloseServiceHandle(service);
            state
        };
        CloseServiceHandle(manager);
        state
    }
}

/// Windows' version from `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`: Windows 10 and
/// later say 6.3 in `CurrentVersion` and the truth in `CurrentMajor/MinorVersionNumber`.
pub fn version() -> Option<(u32, u32, u32)> {
    use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_64KEY};
    let key = winreg::RegKey::predef(HKEY_LOCAL_MACHINE)
        .open_subkey_with_flags(
            "SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion",
            KEY_READ | KEY_WOW64_64KEY,
        )
        .ok()?;
    let build: u32 = key
        .get_value::<String, _>("CurrentBuildNumber")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if let (Ok(major), Ok(minor)) = (
        key.get_value::<u32, _>("CurrentMajorVersionNumber"),
        key.get_value::<u32, _>("CurrentMinorVersionNumber"),
    ) {
        return Some((major, minor, build));
    }
    let version = key.get_value::<String, _>("CurrentVersion").ok()?;
    let (major, minor) = version.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?, build))
}

/// The local date and time (`GetLocalTime`).
pub fn local_now() -> (i64, u32, u32, u32, u32, u32) {
    use windows_sys::Win32::System::SystemInformation::GetLocalTime;
    let mut t = windows_sys::Win32::Foundation::SYSTEMTIME::default();
    // SAFETY: GetLocalTime fills the SYSTEMTIME it is given and cannot fail.
    unsafe { GetLocalTime(&raw mut t) };
    (
        i64::from(t.wYear),
        u32::from(t.wMonth),
        u32::from(t.wDay),
        u32::from(t.wHour),
        u32::from(t.wMinute),
        u32::from(t.wSecond),
    )
}

/// What one ICMP echo with a limited TTL came back with: the IP status
/// (`IP_TTL_EXPIRED_TRANSIT`, `IP_SUCCESS`, an unreachable code) and who sent it; `None`
/// when nothing came back in time. The probe of a path trace made without administrator
/// rights (`IcmpSendEcho2`, `Icmp6SendEcho2`: no raw socket needed). `from` is this
/// machine's address towards `to` (Icmp6SendEcho2 sends from it). Blocks up to `timeout`.
pub fn echo(
    to: IpAddr,
    from: IpAddr,
    ttl: u8,
    timeout: Duration,
) -> std::io::Result<Option<(u32, IpAddr)>> {
    use windows_sys::Win32::Foundation::GetLastError;
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        Icmp6CreateFile, IcmpCloseHandle, IcmpCreateFile, ICMPV6_ECHO_REPLY_LH, ICMP_ECHO_REPLY,
        IP_OPTION_INFORMATION, IP_REQ_TIMED_OUT,
    };

    let options = IP_OPTION_INFORMATION {
        Ttl: ttl,
        ..Default::default()
    };
    // Room for the reply, its data and an ICMP error's quoted packet; u64 for the alignment
    // of the reply structures.
    let mut reply = [0u64; 128];
    let ms = u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1);
    // SAFETY: the handle is closed on every path; the options and the reply buffer outlive
    // the synchronous call; the reply is read as the structure the call writes at the start
    // of the buffer.
    unsafe {
        let handle = match to {
            IpAddr::V4(_) => IcmpCreateFile(),
            IpAddr::V6(_) => Icmp6CreateFile(),
        };
        if handle == INVALID_HANDLE_VALUE {
            return Err(std::io::Error::last_os_error());
        }
        let n = match (to, from) {
            (IpAddr::V4(to), _) => send4(handle, to, &options, &mut reply, ms),
            (IpAddr::V6(to), IpAddr::V6(from)) => send6(handle, to, from, &options, &mut reply, ms),
            (IpAddr::V6(to), IpAddr::V4(_)) => {
                send6(handle, to, Ipv6Addr::UNSPECIFIED, &options, &mut reply, ms)
            }
        };
        let error = GetLastError();
        IcmpCloseHandle(handle);
        // No reply: timed out, a plain error, or an IP status (the buffer then holds it, as
        // it holds a reply).
        if n == 0 && !(11000..12000).contains(&error) {
            return Err(std::io::Error::from_raw_os_error(error.cast_signed()));
        }
        if n == 0 && error == IP_REQ_TIMED_OUT {
            return Ok(None);
        }
        Ok(Some(match to {
            IpAddr::V4(_) => {
                let r = reply.as_ptr().cast::<ICMP_ECHO_REPLY>().read();
                (
                    r.Status,
                    IpAddr::V4(Ipv4Addr::from(r.Address.to_ne_bytes())),
                )
            }
            IpAddr::V6(_) => {
                let r = reply
                    .as_ptr()
                    .cast::<ICMPV6_ECHO_REPLY_LH>()
                    .read_unaligned();
                let words = r.Address.sin6_addr;
                let mut bytes = [0u8; 16];
                for (i, w) in words.iter().enumerate() {
                    bytes[2 * i..2 * i + 2].copy_from_slice(&w.to_ne_bytes());
                }
                (r.Status, IpAddr::V6(Ipv6Addr::from(bytes)))
            }
        }))
    }
}

/// What an echo of a trace carries.
const ECHO_DATA: &[u8] = b"automate-ports trace";

/// `IcmpSendEcho2`, synchronous (no event, no APC). Safety: `handle` from `IcmpCreateFile`.
unsafe fn send4(
    handle: windows_sys::Win32::Foundation::HANDLE,
    to: Ipv4Addr,
    options: &windows_sys::Win32::NetworkManagement::IpHelper::IP_OPTION_INFORMATION,
    reply: &mut [u64],
    ms: u32,
) -> u32 {
    use windows_sys::Win32::NetworkManagement::IpHelper::IcmpSendEcho2;
    // SAFETY: the request, options and reply buffer are valid for the call, sized as passed.
    unsafe {
        IcmpSendEcho2(
            handle,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            u32::from_ne_bytes(to.octets()),
            ECHO_DATA.as_ptr().cast(),
            ECHO_DATA.len() as u16,
            options,
            reply.as_mut_ptr().cast(),
            (reply.len() * 8) as u32,
            ms,
        )
    }
}

/// `Icmp6SendEcho2`, synchronous, from `from`. Safety: `handle` from `Icmp6CreateFile`.
unsafe fn send6(
    handle: windows_sys::Win32::Foundation::HANDLE,
    to: Ipv6Addr,
    from: Ipv6Addr,
    options: &windows_sys::Win32::NetworkManagement::IpHelper::IP_OPTION_INFORMATION,
    reply: &mut [u64],
    ms: u32,
) -> u32 {
    use windows_sys::Win32::NetworkManagement::IpHelper::Icmp6SendEcho2;
    use windows_sys::Win32::Networking::WinSock::{
        IN6_ADDR, IN6_ADDR_0, SOCKADDR_IN6, SOCKADDR_IN6_0,
    };
    let sockaddr = |ip: Ipv6Addr| SOCKADDR_IN6 {
        sin6_family: AF_INET6,
        sin6_port: 0,
        sin6_flowinfo: 0,
        sin6_addr: IN6_ADDR {
            u: IN6_ADDR_0 { Byte: ip.octets() },
        },
        Anonymous: SOCKADDR_IN6_0 { sin6_scope_id: 0 },
    };
    let (source, dest) = (sockaddr(from), sockaddr(to));
    // SAFETY: the addresses, request, options and reply buffer are valid for the call, sized
    // as passed.
    unsafe {
        Icmp6SendEcho2(
            handle,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &raw const source,
            &raw const dest,
            ECHO_DATA.as_ptr().cast(),
            ECHO_DATA.len() as u16,
            options,
            reply.as_mut_ptr().cast(),
            (reply.len() * 8) as u32,
            ms,
        )
    }
}

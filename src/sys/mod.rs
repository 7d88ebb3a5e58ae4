//! What the operating system provides, in one place: the wall clock, its error codes, and
//! which process holds a local port (`linux.rs`: /proc; `windows.rs`: the IP Helper tables
//! with owning PIDs and a process snapshot for their image names).

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod defer;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod disconnect;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(any(windows, test))]
mod owners;
pub mod udp;
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows;

#[cfg(target_os = "linux")]
pub use defer::defer_accept;
#[cfg(target_os = "linux")]
pub use disconnect::disconnect;
#[cfg(target_os = "linux")]
pub use linux::{tcp_listener, udp_holder};
#[cfg(windows)]
pub use windows::{echo, service_state, tcp_listener, udp_holder};

use std::time::{SystemTime, UNIX_EPOCH};

/// A Windows service's state, from the Service Control Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Running,
    Stopped,
    Starting,
    Stopping,
    Paused,
    NotInstalled,
    /// The manager could not be asked (no permission, no manager).
    Unknown,
}

impl ServiceState {
    /// From `SERVICE_STATUS.dwCurrentState`.
    pub fn from_code(code: u32) -> ServiceState {
        match code {
            1 => ServiceState::Stopped,
            2 => ServiceState::Starting,
            3 => ServiceState::Stopping,
            4 => ServiceState::Running,
            5..=7 => ServiceState::Paused,
            _ => ServiceState::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Running => "running",
            ServiceState::Stopped => "stopped",
            ServiceState::Starting => "starting",
            ServiceState::Stopping => "stopping",
            ServiceState::Paused => "paused",
            ServiceState::NotInstalled => "not installed",
            ServiceState::Unknown => "unknown",
        }
    }
}

/// The firewall commands this machine takes: Windows 7 / Server 2008 R2 have no NetSecurity
/// PowerShell module (`New-NetFirewallRule` came with Windows 8 / Server 2012), so there the
/// lines are `netsh advfirewall`, which every Windows since Vista knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirewallShell {
    Linux,
    PowerShell,
    Netsh,
}

impl FirewallShell {
    /// This machine's, asked once.
    pub fn here() -> FirewallShell {
        if !cfg!(windows) {
            return FirewallShell::Linux;
        }
        match windows_version() {
            Some((major, minor, _)) if (major, minor) < (6, 2) => FirewallShell::Netsh,
            _ => FirewallShell::PowerShell,
        }
    }
}

/// This machine's local date and time (year, month, day, hour, minute, second), for ages of
/// times Windows programs wrote in local time.
#[cfg(windows)]
pub fn local_now() -> (i64, u32, u32, u32, u32, u32) {
    windows::local_now()
}

/// Windows' version (major, minor, build) from the registry, as the agent's installers read
/// it; `None` elsewhere or when unreadable. Read once.
pub fn windows_version() -> Option<(u32, u32, u32)> {
    #[cfg(windows)]
    {
        static VERSION: std::sync::OnceLock<Option<(u32, u32, u32)>> = std::sync::OnceLock::new();
        *VERSION.get_or_init(windows::version)
    }
    #[cfg(not(windows))]
    None
}

/// The wall clock in milliseconds since the Unix epoch (0 before 1970): the probe protocol's
/// timestamps.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why [`read_regular`] refused a file.
pub const NOT_REGULAR: &str = "not a regular file";

/// Reads a regular file of at most `max` bytes, with its metadata. Something else in its place
/// (a FIFO, a device, a directory) is refused without blocking, as [`NOT_REGULAR`] with
/// `InvalidInput`, and a file larger than `max`, or one that grows past it while read, is not
/// read whole (`InvalidData`). The metadata is the opened file's: the file judged is the
/// file read.
pub fn read_regular(
    path: &std::path::Path,
    max: u64,
) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    use std::io::{Error, ErrorKind, Read as _};
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // A FIFO opened for reading would wait for a writer.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, nix::libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, NOT_REGULAR));
    }
    let larger = || Error::new(ErrorKind::InvalidData, format!("larger than {max} bytes"));
    if meta.len() > max {
        return Err(larger());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(larger());
    }
    Ok((bytes, meta))
}

/// Runs `f` on a thread of its own and waits for it at most `limit`: a call the operating
/// system never returns from then costs a thread, not the run. `None` when it did not return
/// in time (or no thread could be started).
pub fn within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("os-call".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .ok()?;
    rx.recv_timeout(limit).ok()
}

/// "Too many open files", as `raw_os_error` reports it.
#[cfg(unix)]
pub const EMFILE: i32 = 24;
#[cfg(windows)]
pub const EMFILE: i32 = 10024; // WSAEMFILE

/// Linux's connect fails with EACCES when a router answers ICMPv6 administratively
/// prohibited; the local firewall's drop is EPERM. `None` where the two are not told apart.
#[cfg(target_os = "linux")]
pub const EACCES_REMOTE: Option<i32> = Some(13);
#[cfg(not(target_os = "linux"))]
pub const EACCES_REMOTE: Option<i32> = None;

/// A process holding a local port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The process name (Linux: `comm`).
    pub name: String,
}

impl Holder {
    /// The Automate agent's own processes: the service, its monitor and tray on Windows
    /// (`LTSVC.exe`, `LTSvcMon.exe`, `LTTray.exe`), `ltechagent` on Linux and macOS.
    pub fn is_automate_agent(&self) -> bool {
        let name = self.name.to_ascii_lowercase();
        ["ltsvc", "lttray", "ltechagent"]
            .iter()
            .any(|agent| name.starts_with(agent))
    }
}

/// Elsewhere nobody reads the owner yet: the port's state is still reported.
#[cfg(not(any(target_os = "linux", windows)))]
pub fn tcp_listener(_port: u16) -> Option<Holder> {
    None
}

#[cfg(not(any(target_os = "linux", windows)))]
pub fn udp_holder(_addr: std::net::SocketAddr) -> Option<Holder> {
    None
}

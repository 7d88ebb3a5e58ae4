//! Installed ScreenConnect clients and the relay each one uses, so `check --role
//! screenconnect-client` needs no flags on a PC with the client. The client's launch
//! parameters carry its relay (`h=` host, `p=` port) as a query string: on Windows in the
//! image path of its service `ScreenConnect Client (THUMBPRINT)` (under
//! `HKLM\SYSTEM\CurrentControlSet\Services`), on Linux and macOS in
//! `ClientLaunchParameters.txt` in the client's folder under `/opt` (`screenconnect-THUMBPRINT`
//! or `connectwisecontrol-THUMBPRINT`), as the ConnectWise Control PowerShell module's
//! `Get-CWCLastContact` documents. Several instances (several ScreenConnect servers) may be
//! installed: each is checked.

/// One installed client: its instance's thumbprint, and the relay it connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub thumbprint: String,
    pub host: String,
    pub port: u16,
    /// Where it was found (the service, or the file).
    pub source: String,
}

/// The relay in a client's launch parameters (`...?e=Access&y=Guest&h=relay.example&p=8041&...`).
pub fn parse_launch(text: &str) -> Option<(String, u16)> {
    let query = text.split_once('?')?.1;
    let query = query
        .split(['"', ' ', '\r', '\n'])
        .next()
        .unwrap_or_default();
    let mut host = None;
    let mut port = None;
    for pair in query.split('&') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        match key {
            "h" => host = Some(decode(value)),
            "p" => port = decode(value).trim().parse::<u16>().ok().filter(|&p| p != 0),
            _ => {}
        }
    }
    let host = host.filter(|h| !h.trim().is_empty())?;
    Some((host.trim().to_string(), port?))
}

/// `%2E` and `+` as URL query strings write them.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The thumbprint in `ScreenConnect Client (0123456789abcdef)` or `screenconnect-0123...`.
fn thumbprint_of(name: &str) -> String {
    if let Some((_, rest)) = name.split_once('(') {
        return rest.trim_end_matches(')').to_string();
    }
    name.rsplit('-')
        .next()
        .unwrap_or(name)
        .trim_end_matches(".app")
        .to_string()
}

/// The clients installed on this machine.
pub fn find() -> Vec<Instance> {
    #[cfg(windows)]
    {
        find_windows()
    }
    #[cfg(not(windows))]
    {
        find_in(std::path::Path::new("/opt"))
    }
}

/// Clients under `root` (`/opt`): `screenconnect-*` and `connectwisecontrol-*` folders (and
/// their macOS `.app` bundles), each with `ClientLaunchParameters.txt`.
#[cfg(not(windows))]
pub fn find_in(root: &std::path::Path) -> Vec<Instance> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("screenconnect-") || n.starts_with("connectwisecontrol-"))
        .collect();
    names.sort();
    for name in names {
        let dir = root.join(&name);
        for file in [
            dir.join("ClientLaunchParameters.txt"),
            dir.join("Contents/Resources/ClientLaunchParameters.txt"),
        ] {
            // A parameters file is one line; a larger one is not the client's.
            let Some(text) = read_small(&file) else {
                continue;
            };
            if let Some((host, port)) = parse_launch(&text) {
                found.push(Instance {
                    thumbprint: thumbprint_of(&name),
                    host,
                    port,
                    source: file.display().to_string(),
                });
                break;
            }
        }
    }
    found
}

#[cfg(not(windows))]
fn read_small(path: &std::path::Path) -> Option<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(windows)]
fn find_windows() -> Vec<Instance> {
    use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ};
    use winreg::RegKey;
    let Ok(services) = RegKey::predef(HKEY_LOCAL_MACHINE)
        .open_subkey_with_flags("SYSTEM\\CurrentControlSet\\Services", KEY_READ)
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for name in services.enum_keys().filter_map(Result::ok) {
        if !name.starts_with("ScreenConnect Client (") {
            continue;
        }
        let Ok(path) = services
            .open_subkey(&name)
            .and_then(|k| k.get_value::<String, _>("ImagePath"))
        else {
            continue;
        };
        if let Some((host, port)) = parse_launch(&path) {
            found.push(Instance {
                thumbprint: thumbprint_of(&name),
                host,
                port,
                source: format!("the service '{name}'"),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_from_launch_parameters() {
        let windows = r#""C:\Program Files (x86)\ScreenConnect Client (0123456789abcdef)\ScreenConnect.ClientService.exe" "?e=Access&y=Guest&h=instance-abc123-relay.screenconnect.com&p=443&s=4f1d2c3b-0000-0000-0000-000000000000&k=BgIAAACkAABSU0ExAAgAAAEAAQ&c=&c=&c=""#;
        assert_eq!(
            parse_launch(windows),
            Some(("instance-abc123-relay.screenconnect.com".to_string(), 443))
        );
        assert_eq!(
            parse_launch("?e=Access&y=Guest&h=sc.example.com&p=8041&s=x\n"),
            Some(("sc.example.com".to_string(), 8041))
        );
        assert_eq!(
            parse_launch("?h=sc%2Eexample%2Ecom&p=8041"),
            Some(("sc.example.com".to_string(), 8041))
        );
        assert_eq!(parse_launch("?e=Access&h=sc.example.com"), None, "no port");
        assert_eq!(parse_launch("?h=&p=8041"), None, "no host");
        assert_eq!(parse_launch("no query"), None);
        assert_eq!(parse_launch("?h=a&p=0"), None);
        assert_eq!(parse_launch("?h=a&p=%"), None);
    }

    #[test]
    fn thumbprints_from_names() {
        assert_eq!(
            thumbprint_of("ScreenConnect Client (0123456789abcdef)"),
            "0123456789abcdef"
        );
        assert_eq!(
            thumbprint_of("screenconnect-0123456789abcdef"),
            "0123456789abcdef"
        );
        assert_eq!(
            thumbprint_of("connectwisecontrol-0123456789abcdef.app"),
            "0123456789abcdef"
        );
    }

    #[cfg(not(windows))]
    #[test]
    fn clients_under_opt() {
        let dir = tempfile::tempdir().unwrap();
        let client = dir.path().join("screenconnect-aaaa");
        std::fs::create_dir(&client).unwrap();
        std::fs::write(
            client.join("ClientLaunchParameters.txt"),
            "?e=Access&y=Guest&h=127.0.0.1&p=18041&s=x",
        )
        .unwrap();
        let mac = dir
            .path()
            .join("connectwisecontrol-bbbb.app/Contents/Resources");
        std::fs::create_dir_all(&mac).unwrap();
        std::fs::write(
            mac.join("ClientLaunchParameters.txt"),
            "?h=relay.example&p=443",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("unrelated")).unwrap();
        let found = find_in(dir.path());
        let brief: Vec<(&str, &str, u16)> = found
            .iter()
            .map(|i| (i.thumbprint.as_str(), i.host.as_str(), i.port))
            .collect();
        assert_eq!(
            brief,
            [("bbbb", "relay.example", 443), ("aaaa", "127.0.0.1", 18041)]
        );
    }
}

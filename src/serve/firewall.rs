//! Windows Defender Firewall and `serve`: a new program gets no inbound traffic until a rule
//! allows it (silently so when it runs as SYSTEM or a service), and `check` would then blame
//! the firewall in front of the server. On start, serve asks the firewall through PowerShell
//! (its JSON is the same in every language) and prints what it found and the exact
//! `New-NetFirewallRule` and `Remove-NetFirewallRule` lines. The judgement is pure and tested
//! everywhere; only the asking is Windows-only.

use std::path::Path;

use serde::Deserialize;

use crate::sys::FirewallShell;

/// The rule's display name: the lines serve prints add and remove exactly this one.
const RULE: &str = "automate-ports serve";

/// What PowerShell reported: enabled inbound rules for this program that allow and that
/// block, and how many firewall profiles are on.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(super) struct Rules {
    allow: u32,
    block: u32,
    enabled: u32,
}

/// The lines serve prints on Windows: what the firewall does with inbound traffic to `exe`
/// (from `asked`, the firewall's answer or why there is none), then how to allow it, in
/// PowerShell or, on Windows 7 / Server 2008 R2, with netsh.
pub(super) fn lines(exe: &Path, asked: Result<Rules, String>, shell: FirewallShell) -> Vec<String> {
    let program = exe.display();
    let (allow, remove, console) = if shell == FirewallShell::Netsh {
        (
            format!("  netsh advfirewall firewall add rule name=\"{RULE}\" dir=in action=allow program=\"{program}\" enable=yes"),
            format!("  and when done: netsh advfirewall firewall delete rule name=\"{RULE}\""),
            "a command prompt",
        )
    } else {
        (
            format!("  New-NetFirewallRule -DisplayName '{RULE}' -Program '{program}' -Direction Inbound -Action Allow"),
            format!("  and when done: Remove-NetFirewallRule -DisplayName '{RULE}'"),
            "PowerShell",
        )
    };
    let head = match asked {
        Ok(Rules { enabled: 0, .. }) => {
            return vec!["Windows Defender Firewall is off on every profile: it does not filter serve here (a firewall in front of this server still does)".into()];
        }
        Ok(Rules { block, .. }) if block > 0 => format!(
            "Windows Defender Firewall has {block} rule(s) blocking inbound traffic to this program: check will see its ports as filtered. Disable them, then allow it ({console} as Administrator):"
        ),
        Ok(Rules { allow, .. }) if allow > 0 => {
            return vec![format!(
                "Windows Defender Firewall allows inbound traffic to this program ({allow} rule(s))"
            )];
        }
        Ok(_) => format!("Windows Defender Firewall has no rule for this program, so it blocks inbound traffic to it (with no prompt when serve runs as SYSTEM or a service): allow it ({console} as Administrator):"),
        Err(why) => {
            let elevated = if shell == FirewallShell::Netsh {
                ""
            } else {
                "; reading its rules may need an elevated PowerShell"
            };
            format!(
            "could not ask Windows Defender Firewall ({why}{elevated}): if check reports filtered ports, allow this program ({console} as Administrator):"
        )
        }
    };
    vec![head, allow, remove]
}

/// Reads the firewall's rules for `exe` through PowerShell (Windows 8 / 2012 and later: the
/// NetSecurity module).
#[cfg(windows)]
pub(super) fn ask(exe: &Path, shell: FirewallShell) -> Result<Rules, String> {
    if shell == FirewallShell::Netsh {
        return Err("Windows 7 / Server 2008 R2 has no PowerShell NetSecurity module to read its rules with".into());
    }
    let program = exe.display().to_string().replace('\'', "''");
    // Enum names (True, Inbound, Allow, Block) are not translated: the answer is the same on a
    // German Windows.
    let script = format!(
        "$ErrorActionPreference='Stop'; \
         $r = @(Get-NetFirewallApplicationFilter -Program '{program}' -ErrorAction SilentlyContinue | Get-NetFirewallRule | Where-Object {{ $_.Enabled -eq 'True' -and $_.Direction -eq 'Inbound' }}); \
         $on = @(Get-NetFirewallProfile | Where-Object {{ $_.Enabled -eq 'True' }}).Count; \
         ConvertTo-Json -Compress @{{ allow = @($r | Where-Object {{ $_.Action -eq 'Allow' }}).Count; block = @($r | Where-Object {{ $_.Action -eq 'Block' }}).Count; enabled = $on }}"
    );
    let out = std::process::Command::new("powershell.exe")
        .args(["-NoProfile", "-NonInteractive", "-Command", &script])
        .output()
        .map_err(|e| format!("PowerShell did not start: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(format!("PowerShell failed: {}", first.trim()));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Err("PowerShell gave no answer (is its NetSecurity module there?)".into());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("unexpected answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(asked: Result<Rules, String>) -> Vec<String> {
        lines(
            Path::new("C:\\Tools\\automate-ports.exe"),
            asked,
            FirewallShell::PowerShell,
        )
    }

    #[test]
    fn windows_7_gets_netsh_lines() {
        let said = lines(
            Path::new("C:\\Tools\\automate-ports.exe"),
            Err("Windows 7 / Server 2008 R2 has no PowerShell NetSecurity module to read its rules with".into()),
            FirewallShell::Netsh,
        );
        assert!(
            said[0].ends_with("(a command prompt as Administrator):"),
            "{said:?}"
        );
        assert_eq!(
            said[1],
            "  netsh advfirewall firewall add rule name=\"automate-ports serve\" dir=in action=allow program=\"C:\\Tools\\automate-ports.exe\" enable=yes"
        );
        assert_eq!(
            said[2],
            "  and when done: netsh advfirewall firewall delete rule name=\"automate-ports serve\""
        );
    }

    #[test]
    fn what_serve_says_about_the_firewall() {
        let rules = |allow, block, enabled| {
            Ok(Rules {
                allow,
                block,
                enabled,
            })
        };
        let none = said(rules(0, 0, 3));
        assert!(none[0].contains("has no rule for this program"), "{none:?}");
        assert_eq!(
            none[1],
            "  New-NetFirewallRule -DisplayName 'automate-ports serve' -Program 'C:\\Tools\\automate-ports.exe' -Direction Inbound -Action Allow"
        );
        assert!(none[2].ends_with("Remove-NetFirewallRule -DisplayName 'automate-ports serve'"));
        assert_eq!(said(rules(1, 0, 3)).len(), 1);
        assert!(said(rules(1, 0, 3))[0].contains("allows inbound traffic"));
        assert!(said(rules(1, 2, 3))[0].contains("2 rule(s) blocking"));
        assert!(said(rules(0, 0, 0))[0].contains("is off on every profile"));
        let failed = said(Err("PowerShell did not start: not found".into()));
        assert!(failed[0]
            .starts_with("could not ask Windows Defender Firewall (PowerShell did not start"));
        assert_eq!(failed.len(), 3);
        let parsed: Rules = serde_json::from_str(r#"{"allow":0,"block":1,"enabled":2}"#).unwrap();
        assert_eq!(
            parsed,
            Rules {
                allow: 0,
                block: 1,
                enabled: 2
            }
        );
    }
}

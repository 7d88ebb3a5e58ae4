//! After binding, `serve` needs no privilege at all: on Unix it leaves root (or the file
//! capabilities `setcap` gave it) before it answers its first probe, so a flaw in its
//! handling of untrusted packets would not be a flaw running as root.

/// Leaves root for `user` (default `nobody`) with no capabilities, or clears file
/// capabilities when not root. Returns the line for serve's log, if anything changed.
#[cfg(unix)]
pub fn drop(user: Option<&str>) -> anyhow::Result<Option<String>> {
    use nix::unistd::{geteuid, setgid, setuid, Gid, Uid, User};

    if !geteuid().is_root() {
        anyhow::ensure!(
            user.is_none(),
            "--user works only when serve starts as root: leave it out, or start serve as root so it can bind low ports and then switch"
        );
        return clear_capabilities();
    }
    let wanted = user.unwrap_or("nobody");
    let found = match wanted.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(wanted),
    }
    .map_err(|e| anyhow::anyhow!("cannot look up user '{wanted}': {e}"))?;
    let (name, uid, gid) = match found {
        Some(account) => (account.name, account.uid, account.gid),
        // Minimal containers may have no passwd entry for nobody; its numbers are standard.
        None if user.is_none() => (
            "nobody".to_string(),
            Uid::from_raw(65534),
            Gid::from_raw(65534),
        ),
        None => anyhow::bail!(
            "no user '{wanted}' on this machine: give --user an existing unprivileged account (or leave it out for nobody)"
        ),
    };
    anyhow::ensure!(
        !uid.is_root(),
        "--user {wanted} is root: name an unprivileged account; serve needs root only to bind"
    );
    let failed = |step: &str, e: nix::Error| {
        anyhow::anyhow!(
            "could not switch to user {name} ({step}: {e}): start serve as that user, or give --user another account"
        )
    };
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    nix::unistd::setgroups(&[gid]).map_err(|e| failed("setgroups", e))?;
    setgid(gid).map_err(|e| failed("setgid", e))?;
    setuid(uid).map_err(|e| failed("setuid", e))?;
    // Changing every uid away from 0 clears all capabilities; prove root cannot come back.
    anyhow::ensure!(
        setuid(Uid::from_raw(0)).is_err(),
        "switched to user {name}, but could become root again: refusing to serve"
    );
    clear_capabilities()?;
    Ok(Some(format!(
        "left root after binding: running as {name} (uid {uid}, gid {gid}) with no capabilities"
    )))
}

#[cfg(not(unix))]
pub fn drop(user: Option<&str>) -> anyhow::Result<Option<String>> {
    anyhow::ensure!(
        user.is_none(),
        "--user is for Unix: on Windows, start serve under the account it should run as (see README)"
    );
    Ok(None)
}

#[cfg(target_os = "linux")]
fn clear_capabilities() -> anyhow::Result<Option<String>> {
    use caps::CapSet;
    let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
    if held.is_empty() {
        return Ok(None);
    }
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::clear(None, set).map_err(|e| {
            anyhow::anyhow!(
                "could not give up capabilities after binding ({e}): run serve as root or without setcap"
            )
        })?;
    }
    let mut names: Vec<String> = held.iter().map(|c| c.to_string().to_lowercase()).collect();
    names.sort();
    Ok(Some(format!(
        "gave up capabilities after binding ({}): serve runs with none",
        names.join(", ")
    )))
}

#[cfg(all(unix, not(target_os = "linux")))]
#[allow(clippy::unnecessary_wraps)]
fn clear_capabilities() -> anyhow::Result<Option<String>> {
    Ok(None)
}

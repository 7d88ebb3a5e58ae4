//! Only for Windows targets: the exe's version resource, so Explorer's properties (and
//! winget, and an administrator's inventory) show the product, version and description.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets it");
    let mut res = winresource::WindowsResource::new();
    // Cross-building with mingw-w64: the tools' prefix follows the target's architecture, not its
    // name (x86_64-pc-windows-gnu, and the legacy x86_64-win7-windows-gnu and
    // i686-win7-windows-gnu, for which winresource would fall back to an unprefixed `windres`).
    // Debian: binutils-mingw-w64-x86-64, binutils-mingw-w64-i686.
    let prefix = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86") => "i686-w64-mingw32-",
        _ => "x86_64-w64-mingw32-",
    };
    if std::env::var("HOST").is_ok_and(|h| !h.contains("windows")) {
        res.set_windres_path(&format!("{prefix}windres"));
        res.set_ar_path(&format!("{prefix}ar"));
    }
    res.set("ProductName", "automate-ports")
        .set(
            "FileDescription",
            "Checks the network paths ConnectWise Automate and ScreenConnect need",
        )
        .set("ProductVersion", &version)
        .set("FileVersion", &version)
        .set("OriginalFilename", "automate-ports.exe")
        .set("InternalName", "automate-ports")
        .set("LegalCopyright", "MIT OR Apache-2.0");
    if let Err(e) = res.compile() {
        panic!("the version resource does not compile (needs {prefix}windres when cross-building): {e}");
    }
}

//! Only for Windows targets: the exe's version resource, so Explorer's properties (and
//! winget, and an administrator's inventory) show the product, version and description.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets it");
    let mut res = winresource::WindowsResource::new();
    if std::env::var("HOST").is_ok_and(|h| !h.contains("windows")) {
        // Cross-building with mingw-w64 (Debian: binutils-mingw-w64-x86-64).
        res.set_windres_path("x86_64-w64-mingw32-windres");
        res.set_ar_path("x86_64-w64-mingw32-ar");
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
    res.compile().expect(
        "the version resource compiles (needs x86_64-w64-mingw32-windres when cross-building)",
    );
}

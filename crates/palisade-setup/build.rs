//! Embeds `palisade-setup.manifest` (requestedExecutionLevel asInvoker) into the Windows binary:
//! with the MSVC linker's manifest options, or with MinGW's `windres` for the GNU target.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=palisade-setup.manifest");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=WINDRES");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("palisade-setup.manifest");
    match std::env::var("CARGO_CFG_TARGET_ENV").as_deref() {
        Ok("msvc") => {
            println!("cargo:rustc-link-arg-bins=/MANIFEST:EMBED");
            println!("cargo:rustc-link-arg-bins=/MANIFESTINPUT:{}", manifest.display());
        }
        _ => {
            let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
            let rc = out.join("palisade-setup.rc");
            // 1 = the executable's manifest resource, 24 = RT_MANIFEST.
            let escaped = manifest.display().to_string().replace('\\', "\\\\");
            std::fs::write(&rc, format!("1 24 \"{escaped}\"\n")).expect("write the resource script");
            let obj = out.join("palisade-setup-manifest.o");
            let windres = std::env::var("WINDRES").unwrap_or_else(|_| "x86_64-w64-mingw32-windres".into());
            let status = Command::new(&windres)
                .arg("--input").arg(&rc)
                .arg("--output").arg(&obj)
                .arg("--output-format=coff")
                .status()
                .unwrap_or_else(|e| panic!("cannot run {windres} to embed the manifest (install binutils-mingw-w64-x86-64 or set WINDRES): {e}"));
            assert!(status.success(), "{windres} failed to compile the manifest resource");
            println!("cargo:rustc-link-arg-bins={}", obj.display());
        }
    }
}

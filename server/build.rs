//! Copies the studio's built files (`web/dist`, made by `scripts/web.sh`)
//! to where the binary embeds them from. A clone where they were never
//! built still compiles — `cargo build`, clippy and the API tests need no
//! Node.js — but its `/` answers 503 naming the script, and this prints a
//! warning saying so.

use std::path::{Path, PathBuf};
use std::{env, fs, io};

fn main() {
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../web");
    let dist = web.join("dist");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("studio");
    // Cargo looks at every file under a folder named here. The bundle is
    // what is embedded; web/ itself only until the bundle first appears
    // (scripts/web.sh makes it beside web/dist in a temporary folder).
    // The sources are watched only to warn when they are newer than it.
    if dist.is_dir() {
        println!("cargo:rerun-if-changed={}", dist.display());
        println!("cargo:rerun-if-changed={}", web.join("src").display());
        println!(
            "cargo:rerun-if-changed={}",
            web.join("index.html").display()
        );
    } else {
        println!("cargo:rerun-if-changed={}", web.display());
    }
    if out.exists() {
        fs::remove_dir_all(&out).expect("the old studio copy can be removed");
    }
    fs::create_dir_all(&out).expect("OUT_DIR is writable");
    if dist.join("index.html").is_file() {
        copy_dir(&dist, &out).expect("web/dist can be copied");
        if let Some(newer) = newer_than(&web, &dist.join("app.js")) {
            println!(
                "cargo:warning=the studio's bundle is older than {}: run scripts/web.sh, then build again, or the binary serves the old studio",
                newer.display()
            );
        }
    } else {
        println!(
            "cargo:warning=the studio is not built (web/dist/index.html is missing): run scripts/web.sh, then build again; until then / answers 503"
        );
    }
}

/// A source of the studio (web/index.html, web/src/*) modified after
/// `built`, if any.
fn newer_than(web: &Path, built: &Path) -> Option<PathBuf> {
    let built = fs::metadata(built).and_then(|m| m.modified()).ok()?;
    let mut sources = vec![web.join("index.html")];
    sources.extend(
        fs::read_dir(web.join("src"))
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path())),
    );
    sources.into_iter().find(|p| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t > built)
    })
}

fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

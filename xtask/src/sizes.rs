//! `cargo xtask sizes`: what each way of depending on the facade costs a hello-world
//! tool, as the markdown table of the facade's integration guide.
//!
//! For each feature set it writes a small tool into a temporary directory (its own
//! workspace, the facade by path, this workspace's `Cargo.lock` so the versions are
//! the ones we test), builds it `--release` with `strip = true` in a fresh target
//! directory (a cold build: every dependency compiled), and reports the stripped
//! executable's bytes, the crates of `cargo tree -e normal` (the tool included) and
//! the build's wall time. Times depend on the machine and its load; bytes and crates
//! depend only on the platform and the lock file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One way of depending on the facade.
struct Variant {
    label: &'static str,
    /// The `telemetry` dependency line; `None` for plain hello world.
    dependency: Option<&'static str>,
    upload: bool,
}

const VARIANTS: &[Variant] = &[
    Variant {
        label: "plain hello world",
        dependency: None,
        upload: false,
    },
    Variant {
        label: "`crash` (counting + crash reporting)",
        dependency: Some(r#"default-features = false, features = ["crash"]"#),
        upload: false,
    },
    Variant {
        label: "`crash`, `upload`, `native-tls`",
        dependency: Some(
            r#"default-features = false, features = ["crash", "upload", "native-tls"]"#,
        ),
        upload: true,
    },
    Variant {
        label: "`crash`, `upload`, `tls` (the default features)",
        dependency: Some(r#"default-features = false, features = ["crash", "upload", "tls"]"#),
        upload: true,
    },
];

/// What one variant cost.
struct Measured {
    bytes: u64,
    crates: usize,
    build: Duration,
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask sizes".into());
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?
        .to_owned();
    let scratch = workspace.join("target").join("xtask-sizes");
    let mut rows = Vec::new();
    for (i, variant) in VARIANTS.iter().enumerate() {
        let dir = scratch.join(format!("tool{i}"));
        let _ = std::fs::remove_dir_all(&dir);
        write_tool(&workspace, &dir, variant)?;
        let measured = measure(&dir)?;
        eprintln!(
            "xtask sizes: {}: {} bytes, {} crates, {:.1}s",
            variant.label,
            measured.bytes,
            measured.crates,
            measured.build.as_secs_f64()
        );
        rows.push((variant, measured));
        // The build directories are large; only the numbers are kept.
        let _ = std::fs::remove_dir_all(dir.join("target"));
    }
    print_table(&rows);
    Ok(())
}

fn write_tool(workspace: &Path, dir: &Path, variant: &Variant) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("src")).map_err(io)?;
    let dependency = match variant.dependency {
        Some(features) => format!(
            "telemetry = {{ path = {:?}, {features} }}\n",
            workspace.join("telemetry")
        ),
        None => String::new(),
    };
    let manifest = format!(
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [dependencies]\n{dependency}\n\
         [profile.release]\nstrip = true\n\n[workspace]\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(io)?;
    let start = match (variant.dependency, variant.upload) {
        (None, _) => "",
        (Some(_), false) => {
            "    let _ = telemetry::start(\n        telemetry::Config::new(telemetry::program!()).report_crashes(true),\n    );\n"
        }
        (Some(_), true) => {
            "    let _ = telemetry::start(\n        telemetry::Config::new(telemetry::program!())\n            .report_crashes(true)\n            .upload(true)\n            .upload_url(\"https://telemetry.example.com/upload\")\n            .config_url(\"https://telemetry.example.com/config.json\"),\n    );\n"
        }
    };
    let main = format!(
        "#[allow(clippy::print_stdout)]\nfn main() {{\n{start}    println!(\"hello\");\n}}\n"
    );
    std::fs::write(dir.join("src/main.rs"), main).map_err(io)?;
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(io)?;
    Ok(())
}

fn measure(dir: &Path) -> Result<Measured, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = dir.join("target");
    let started = Instant::now();
    let status = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--release", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let build = started.elapsed();
    if !status.success() {
        return Err(format!("building {} failed: {status}", dir.display()));
    }
    let exe: PathBuf = target
        .join("release")
        .join(format!("hello{}", std::env::consts::EXE_SUFFIX));
    let bytes = std::fs::metadata(&exe)
        .map_err(|e| format!("{}: {e}", exe.display()))?
        .len();
    let tree = Command::new(&cargo)
        .current_dir(dir)
        .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}"])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !tree.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&tree.stderr)
        ));
    }
    let crates: std::collections::BTreeSet<String> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    Ok(Measured {
        bytes,
        crates: crates.len(),
        build,
    })
}

#[allow(clippy::print_stdout)]
fn print_table(rows: &[(&Variant, Measured)]) {
    let hello = rows.first().map_or(0, |(_, m)| m.bytes);
    println!(
        "| features ({} {}) | stripped bytes | over hello world | crates | cold build |",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!("|---|---:|---:|---:|---:|");
    for (variant, m) in rows {
        let over = match variant.dependency {
            Some(_) => format!("+{} KB", m.bytes.saturating_sub(hello) / 1000),
            None => "—".to_owned(),
        };
        println!(
            "| {} | {} | {} | {} | {:.0} s |",
            variant.label,
            m.bytes,
            over,
            m.crates,
            m.build.as_secs_f64()
        );
    }
}

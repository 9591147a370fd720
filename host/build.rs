//! Builds every connector under `plugins/` into a WebAssembly component and
//! lists them in `$OUT_DIR/bundled_plugins.rs` (included by `src/bundled.rs`).
//!
//! A plugin is a direct subdirectory of `plugins/` or `plugins/test-plugins/`
//! holding a `manifest.toml`; its `Cargo.toml` names the crate (a `cdylib`).
//! A manifest with `test_only = true` (required under `test-plugins/`) is a
//! plugin for the host's own tests: it is listed in `$OUT_DIR/test_plugins.rs`
//! (`bundled::test_plugins`), never in the connectors the server ships.
//!
//! The `plugins/` workspace is built with a nested cargo for
//! `wasm32-unknown-unknown`, into its own target directory
//! (`target/wasm-plugins`), with the outer build's environment removed so
//! nothing of the host's build leaks in.
//!
//! Toolchain, first that applies:
//! 1. `PASSERELLE_WASM_CARGO=/path/to/cargo`: that cargo, used as is (its
//!    rustc must have the wasm32-unknown-unknown target).
//! 2. The rustc this build uses has `wasm32-unknown-unknown` installed
//!    (`rustup target add wasm32-unknown-unknown`): the same cargo.
//! 3. Debian's `rustc-web cargo-web rust-web-src`: `/usr/bin/cargo` with
//!    `-Zbuild-std` and rustup's `rust-lld` as linker.
//!
//! Otherwise the build fails, pointing to `scripts/wasm-toolchain.sh`.
//! `PASSERELLE_SKIP_PLUGINS=1` bundles no plugin at all (with a warning), for
//! working on the host without any wasm toolchain.

use std::collections::BTreeMap;
use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const TARGET: &str = "wasm32-unknown-unknown";

/// The generated lists: (file in `$OUT_DIR`, name of the static).
const BUNDLE_LIST: (&str, &str) = ("bundled_plugins.rs", "BUNDLED_PLUGINS");
const TEST_LIST: (&str, &str) = ("test_plugins.rs", "TEST_PLUGINS");

/// Environment variables the build script reads (cargo reruns it when they change).
const ENV_INPUTS: &[&str] = &["PASSERELLE_WASM_CARGO", "PASSERELLE_SKIP_PLUGINS"];

struct Plugin {
    id: String,
    version: String,
    manifest: PathBuf,
    package: String,
    test_only: bool,
}

fn main() {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .unwrap_or_else(|| fail("the host crate has no parent directory"))
        .to_path_buf();
    let plugins_dir = workspace.join("plugins");
    let out_dir = PathBuf::from(env_var("OUT_DIR"));

    // Only the connectors' sources and the contract can change the output.
    println!("cargo:rerun-if-changed={}", plugins_dir.display());
    println!("cargo:rerun-if-changed={}", workspace.join("wit").display());
    for var in ENV_INPUTS {
        println!("cargo:rerun-if-env-changed={var}");
    }

    if env::var_os("PASSERELLE_SKIP_PLUGINS").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:warning=PASSERELLE_SKIP_PLUGINS is set: no connector is bundled");
        write_bundle_list(&out_dir, BUNDLE_LIST, &[]);
        write_bundle_list(&out_dir, TEST_LIST, &[]);
        return;
    }

    let mut plugins = find_plugins(&plugins_dir, false);
    let test_dir = plugins_dir.join("test-plugins");
    if test_dir.is_dir() {
        for plugin in find_plugins(&test_dir, true) {
            if !plugin.test_only {
                fail(&format!(
                    "{}: a plugin under plugins/test-plugins/ must say `test_only = true`",
                    plugin.manifest.display()
                ));
            }
            // A test plugin may be another version of a bundled connector
            // (hot-swap tests), never the same version.
            if let Some(other) = plugins
                .iter()
                .find(|p| p.id == plugin.id && p.version == plugin.version)
            {
                fail(&format!(
                    "two plugins have the id {:?} and version {} ({} and {})",
                    plugin.id,
                    plugin.version,
                    other.manifest.display(),
                    plugin.manifest.display()
                ));
            }
            plugins.push(plugin);
        }
    }
    let wasm_target_dir = workspace.join("target").join("wasm-plugins");
    build_plugins(&plugins_dir, &wasm_target_dir, &plugins);

    let components_dir = out_dir.join("plugins");
    std::fs::create_dir_all(&components_dir)
        .unwrap_or_else(|e| fail(&format!("creating {}: {e}", components_dir.display())));
    let mut built = Vec::new();
    for plugin in &plugins {
        let core_path = wasm_target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", plugin.package.replace('-', "_")));
        let core = std::fs::read(&core_path).unwrap_or_else(|e| {
            fail(&format!(
                "plugin `{}`: reading {} ({e}); is the crate a `cdylib`?",
                plugin.id,
                core_path.display()
            ))
        });
        let component = encode_component(&core).unwrap_or_else(|e| {
            fail(&format!(
                "plugin `{}`: not a valid connector component: {e}",
                plugin.id
            ))
        });
        let component_path = components_dir.join(format!("{}.wasm", plugin.package));
        std::fs::write(&component_path, component)
            .unwrap_or_else(|e| fail(&format!("writing {}: {e}", component_path.display())));
        built.push((plugin, component_path));
    }
    for (list, test_only) in [(BUNDLE_LIST, false), (TEST_LIST, true)] {
        let entries: Vec<(&str, &Path, &Path)> = built
            .iter()
            .filter(|(p, _)| p.test_only == test_only)
            .map(|(p, c)| (p.id.as_str(), p.manifest.as_path(), c.as_path()))
            .collect();
        write_bundle_list(&out_dir, list, &entries);
    }
}

/// The plugins, sorted by id: every direct subdirectory of `plugins_dir` with
/// a `manifest.toml` (the SDK has none). One per id, or with
/// `versions_of_an_id` one per id and version (test plugins may be several
/// later versions of one connector).
fn find_plugins(plugins_dir: &Path, versions_of_an_id: bool) -> Vec<Plugin> {
    let entries = std::fs::read_dir(plugins_dir)
        .unwrap_or_else(|e| fail(&format!("reading {}: {e}", plugins_dir.display())));
    let mut by_id = BTreeMap::new();
    for entry in entries {
        let dir = entry
            .unwrap_or_else(|e| fail(&format!("reading {}: {e}", plugins_dir.display())))
            .path();
        let manifest = dir.join("manifest.toml");
        if !dir.is_dir() || !manifest.is_file() {
            continue;
        }
        let table = read_toml(&manifest);
        let test_only = match table.get("test_only") {
            None => false,
            Some(v) => v.as_bool().unwrap_or_else(|| {
                fail(&format!(
                    "{}: `test_only` must be a boolean",
                    manifest.display()
                ))
            }),
        };
        let id = table
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| fail(&format!("{}: no `id`", manifest.display())));
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            fail(&format!(
                "{}: id {id:?} must be [a-z0-9_-]+",
                manifest.display()
            ));
        }
        let version = table
            .get("version")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| fail(&format!("{}: no `version`", manifest.display())));
        let cargo_toml = dir.join("Cargo.toml");
        let package = read_toml(&cargo_toml)
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| fail(&format!("{}: no `package.name`", cargo_toml.display())));
        let plugin = Plugin {
            id: id.clone(),
            version,
            manifest: manifest.canonicalize().unwrap_or(manifest),
            package,
            test_only,
        };
        let key = (
            id.clone(),
            versions_of_an_id.then(|| plugin.version.clone()),
        );
        if let Some(other) = by_id.insert(key, plugin) {
            fail(&format!(
                "two plugins have the id {id:?}{} ({})",
                if versions_of_an_id {
                    " and the same version"
                } else {
                    ""
                },
                other.manifest.display()
            ));
        }
    }
    by_id.into_values().collect()
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| fail(&format!("reading {}: {e}", path.display())));
    text.parse()
        .unwrap_or_else(|e| fail(&format!("{}: invalid TOML: {e}", path.display())))
}

/// How to invoke a cargo that can build for wasm32.
struct Toolchain {
    cargo: OsString,
    /// Extra environment for the nested cargo.
    env: Vec<(&'static str, OsString)>,
    /// Extra arguments after `build`.
    args: Vec<&'static str>,
}

fn choose_toolchain() -> Toolchain {
    if let Some(cargo) = env::var_os("PASSERELLE_WASM_CARGO").filter(|c| !c.is_empty()) {
        return Toolchain {
            cargo,
            env: Vec::new(),
            args: Vec::new(),
        };
    }

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = sysroot_of(&rustc);
    if let Some(sysroot) = &sysroot {
        if sysroot
            .join("lib/rustlib")
            .join(TARGET)
            .join("lib")
            .is_dir()
        {
            return Toolchain {
                cargo: env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
                // The very rustc whose sysroot was checked.
                env: vec![("RUSTC", rustc)],
                args: Vec::new(),
            };
        }
    }

    // Debian's rustc-web with its std sources: build std for wasm32 ourselves
    // (nightly flag, hence RUSTC_BOOTSTRAP), linking with rustup's rust-lld.
    let debian = [
        "/usr/bin/cargo",
        "/usr/bin/rustc",
        "/usr/lib/rustlib/src/rust/library",
    ];
    if debian.iter().all(|p| Path::new(p).exists()) {
        if let Some(linker) = find_wasm_linker(sysroot.as_deref()) {
            return Toolchain {
                cargo: "/usr/bin/cargo".into(),
                env: vec![
                    ("RUSTC", "/usr/bin/rustc".into()),
                    ("RUSTC_BOOTSTRAP", "1".into()),
                    (
                        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER",
                        linker.into_os_string(),
                    ),
                ],
                args: vec!["-Zbuild-std=std,panic_abort"],
            };
        }
    }

    fail(
        "no Rust toolchain can build the connectors for wasm32-unknown-unknown.\n\
         Run `scripts/wasm-toolchain.sh` (it runs `rustup target add wasm32-unknown-unknown`,\n\
         or installs Debian's rustc-web cargo-web rust-web-src), or set PASSERELLE_WASM_CARGO\n\
         to a cargo whose rustc has that target, or PASSERELLE_SKIP_PLUGINS=1 to bundle none.",
    )
}

fn sysroot_of(rustc: &OsString) -> Option<PathBuf> {
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// rustup's `rust-lld` (next to the build's rustc) or one on the PATH.
fn find_wasm_linker(sysroot: Option<&Path>) -> Option<PathBuf> {
    let host = env::var("HOST").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(sysroot) = sysroot {
        candidates.push(sysroot.join("lib/rustlib").join(&host).join("bin/rust-lld"));
    }
    candidates.push(
        Path::new("/usr/lib/rustlib")
            .join(&host)
            .join("bin/rust-lld"),
    );
    let path = env::var_os("PATH").unwrap_or_default();
    for dir in env::split_paths(&path) {
        candidates.push(dir.join("rust-lld"));
        candidates.push(dir.join("wasm-ld"));
    }
    candidates.into_iter().find(|c| c.is_file())
}

/// Variables of the outer build that must not reach the nested one: they
/// describe the host crate's build (target, profile, flags, wrappers, jobserver).
fn is_leaky(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_LINKER",
        "RUSTC_BOOTSTRAP",
        "RUSTDOC",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_RUSTC",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_RUSTC_CURRENT_DIR",
        "PROFILE",
        "OPT_LEVEL",
        "TARGET",
        "HOST",
        "DEBUG",
        "OUT_DIR",
        "NUM_JOBS",
    ];
    const PREFIXES: &[&str] = &[
        "CARGO_CFG_",
        "CARGO_FEATURE_",
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_PROFILE_",
        "DEP_",
        "__CARGO",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

fn build_plugins(plugins_dir: &Path, target_dir: &Path, plugins: &[Plugin]) {
    if plugins.is_empty() {
        return;
    }
    let toolchain = choose_toolchain();
    let mut cmd = Command::new(&toolchain.cargo);
    // Run from plugins/ so its .cargo/config.toml applies, not the host's.
    cmd.current_dir(plugins_dir);
    for (name, _) in env::vars_os() {
        if name.to_str().is_some_and(is_leaky) {
            cmd.env_remove(&name);
        }
    }
    cmd.envs(toolchain.env.iter().map(|(k, v)| (k, v)));
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(plugins_dir.join("Cargo.toml"))
        .args(["--release", "--target", TARGET, "--color", "never"])
        .arg("--target-dir")
        .arg(target_dir)
        .args(&toolchain.args);
    for plugin in plugins {
        cmd.args(["-p", &plugin.package]);
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("running {:?}: {e}", toolchain.cargo)));
    if !output.status.success() {
        fail(&format!(
            "building the connectors failed ({:?}):\n{}",
            cmd,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
}

fn encode_component(core: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .module(core)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| format!("{e:#}"))
}

fn write_bundle_list(out_dir: &Path, (file, name): (&str, &str), plugins: &[(&str, &Path, &Path)]) {
    let mut code = format!("pub static {name}: &[BundledPlugin] = &[\n");
    for (id, manifest, component) in plugins {
        // `{:?}` of a str is a valid Rust string literal, escapes included.
        let _ = writeln!(
            code,
            "    BundledPlugin {{ id: {id:?}, manifest_toml: include_str!({:?}), component: include_bytes!({:?}) }},",
            path_str(manifest),
            path_str(component),
        );
    }
    code.push_str("];\n");
    let path = out_dir.join(file);
    std::fs::write(&path, code)
        .unwrap_or_else(|e| fail(&format!("writing {}: {e}", path.display())));
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| fail(&format!("{} is not valid UTF-8", path.display())))
}

fn env_var(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| fail(&format!("{name} is not set")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1)
}

//! Running `passerelle plugin ...` and scratch directories for its files.

use std::path::PathBuf;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_passerelle");

/// A fresh directory under the system's temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("passerelle-{name}-{}", super::rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `passerelle plugin ARGS`, logs off.
pub fn plugin(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("plugin")
        .args(args)
        .env("PASSERELLE_LOG", "off")
        .output()
        .expect("run passerelle")
}

//! `passerelle.toml`: the settings of `passerelle serve` (and `passerelle
//! doctor`, which checks the deployment they describe) in a file.
//!
//! Keys are the long flags' names, without the dashes (`listen`,
//! `data-dir`, `database-url`, `janitor-window`, …; `data_dir` is accepted
//! too). Precedence, per setting: a command-line flag, else its
//! `PASSERELLE_*` environment variable, else the file, else the default.
//! The file is `--config PATH` (or `PASSERELLE_CONFIG`), else
//! `passerelle.toml` in the working directory when there is one.
//!
//! The file's settings become command-line arguments that clap parses like
//! the operator's own, so every flag (present or future) has its file key,
//! with the same checks and the same errors.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, Command};

/// The file read when neither `--config` nor `PASSERELLE_CONFIG` names one.
pub const DEFAULT_FILE: &str = "passerelle.toml";

/// The subcommands that read the file; its keys are `serve`'s flags.
const READERS: &[&str] = &["serve", "doctor"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: unknown setting `{key}` (settings are the long flags of `passerelle serve`: {known})")]
    Unknown {
        path: PathBuf,
        key: String,
        known: String,
    },
    #[error("{path}: `{key}` {message}")]
    Value {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// The arguments with the file's settings added, for the subcommands that
/// read it, and where each added argument came from (to name the file in
/// clap's errors). `args` unchanged when clap refuses them as they are
/// (`--help`, a typo: clap says so on the real parse).
pub fn apply(
    command: &Command,
    args: Vec<OsString>,
) -> Result<(Vec<OsString>, Option<Applied>), ConfigFileError> {
    let Ok(matches) = command.clone().try_get_matches_from(&args) else {
        return Ok((args, None));
    };
    let Some((name, sub)) = matches.subcommand() else {
        return Ok((args, None));
    };
    if !READERS.contains(&name) {
        return Ok((args, None));
    }
    let config = sub
        .try_get_one::<PathBuf>("config")
        .ok()
        .flatten()
        .or_else(|| matches.get_one::<PathBuf>("config"));
    let (path, explicit) = match config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_FILE), false),
    };
    if !explicit && !path.is_file() {
        return Ok((args, None));
    }
    let table = read(&path)?;
    let (Some(serve), Some(this)) = (
        command.find_subcommand("serve"),
        command.find_subcommand(name),
    ) else {
        return Ok((args, None));
    };
    let mut args = args;
    let mut applied = Applied {
        path: path.clone(),
        flags: Vec::new(),
    };
    for (key, value) in &table {
        let flag = key.replace('_', "-");
        let known_to_serve = serve.get_arguments().any(|a| a.get_long() == Some(&flag));
        if !known_to_serve || flag == "help" || flag == "config" {
            return Err(ConfigFileError::Unknown {
                path,
                key: key.clone(),
                known: known_flags(serve),
            });
        }
        // `doctor` takes what it checks and ignores the rest.
        let Some(arg) = this.get_arguments().find(|a| a.get_long() == Some(&flag)) else {
            continue;
        };
        if matches!(
            sub.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let bad = |message: &str| ConfigFileError::Value {
            path: path.clone(),
            key: key.clone(),
            message: message.to_string(),
        };
        match arg.get_action() {
            ArgAction::SetTrue => match value {
                toml::Value::Boolean(true) => args.push(format!("--{flag}").into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(bad("must be true or false")),
            },
            ArgAction::Append => {
                let items = match value {
                    toml::Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                };
                for item in items {
                    let text = scalar(item)
                        .ok_or_else(|| bad("must be a string or a number, or an array of them"))?;
                    args.push(format!("--{flag}={text}").into());
                }
            }
            _ => {
                let text = scalar(value).ok_or_else(|| bad("must be a string or a number"))?;
                args.push(format!("--{flag}={text}").into());
            }
        }
        applied.flags.push((flag, key.clone()));
    }
    Ok((args, Some(applied)))
}

/// What the file added to the command line.
#[derive(Debug)]
pub struct Applied {
    pub path: PathBuf,
    /// (flag without dashes, the file's key).
    pub flags: Vec<(String, String)>,
}

impl Applied {
    /// The file's key behind clap's `--flag <VALUE>` in an error, if the
    /// file gave that flag.
    pub fn key_for(&self, invalid_arg: &str) -> Option<&str> {
        let flag = invalid_arg
            .trim_start_matches("--")
            .split([' ', '='])
            .next()
            .unwrap_or_default();
        self.flags
            .iter()
            .find(|(f, _)| f == flag)
            .map(|(_, key)| key.as_str())
    }
}

fn read(path: &Path) -> Result<toml::Table, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigFileError::Parse {
            path: path.to_path_buf(),
            message: e.message().trim().to_string(),
        })
}

/// A TOML scalar as the text a flag takes.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn known_flags(serve: &Command) -> String {
    serve
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|long| *long != "help" && *long != "config")
        .collect::<Vec<_>>()
        .join(", ")
}

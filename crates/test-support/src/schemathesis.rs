//! Locates the `schemathesis` command-line tool (from PyPI, pinned, installed by
//! `make test-assets` into a virtual environment under `.cache/venv`) and runs it against a
//! live server's OpenAPI document.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// `CADUCEE_SCHEMATHESIS` if set, else the virtual environment that `make test-assets` fills.
pub fn binary(workspace: &Path) -> Result<PathBuf, HarnessError> {
    let path = std::env::var_os("CADUCEE_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join(".cache/venv/bin/schemathesis"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingProgram(format!("{} (run `make test-assets`)", path.display())))
    }
}

/// What one schemathesis run printed, and whether every check passed.
#[derive(Debug)]
pub struct Report {
    pub passed: bool,
    pub output: String,
}

/// Runs `schemathesis run` on `schema_url` with a `schemathesis.toml` (`config`) and extra
/// arguments, blocking; call it from `spawn_blocking` in async tests.
pub fn run(workspace: &Path, config: &str, schema_url: &str, args: &[&str]) -> Result<Report, HarnessError> {
    let dir = tempfile::tempdir()
        .map_err(|source| HarnessError::Io { context: "creating a directory for schemathesis".into(), source })?;
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config)
        .map_err(|source| HarnessError::Io { context: "writing schemathesis.toml".into(), source })?;
    let out = Command::new(binary(workspace)?)
        .arg("--config-file")
        .arg(&config_file)
        .arg("run")
        .arg(schema_url)
        .args(args)
        // No colours, no telemetry, no reports left in the working tree.
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .current_dir(dir.path())
        .output()
        .map_err(|source| HarnessError::Io { context: "running schemathesis".into(), source })?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Report { passed: out.status.success(), output })
}

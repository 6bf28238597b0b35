//! Locates the schema checkers that validate `deploy/` (from PyPI, pinned in the Makefile,
//! installed by `make test-assets` into their own virtual environment, `.cache/deploy-venv`):
//! `kubernetes-validate`, which bundles the Kubernetes API schemas, and `check-jsonschema`,
//! which bundles the Compose specification's schema (`vendor.compose-spec`). Both work offline.
//! The same environment's Python (with PyYAML) reads YAML for the tests' own checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::HarnessError;

/// The virtual environment: `CADUCEE_DEPLOY_VENV` if set, else `.cache/deploy-venv`.
fn venv(workspace: &Path) -> PathBuf {
    std::env::var_os("CADUCEE_DEPLOY_VENV").map(PathBuf::from).unwrap_or_else(|| workspace.join(".cache/deploy-venv"))
}

/// `bin/<name>` of the virtual environment; an error telling to run `make test-assets` when it
/// is not there, so that a test needing it fails instead of passing without checking anything.
pub fn program(workspace: &Path, name: &str) -> Result<PathBuf, HarnessError> {
    let path = venv(workspace).join("bin").join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::MissingProgram(format!("{} (run `make test-assets`)", path.display())))
    }
}

/// What a checker printed, and whether it passed.
#[derive(Debug)]
pub struct Report {
    pub passed: bool,
    pub output: String,
}

/// Runs `bin/<name> args…` of the virtual environment in `dir`.
pub fn run(workspace: &Path, name: &str, args: &[&str], dir: &Path) -> Result<Report, HarnessError> {
    let out = Command::new(program(workspace, name)?)
        .args(args)
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .output()
        .map_err(|source| HarnessError::Io { context: format!("running {name}"), source })?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Report { passed: out.status.success(), output })
}

/// Every document of a YAML file, as JSON (read by PyYAML's safe loader, merge keys resolved).
pub fn yaml_documents(workspace: &Path, file: &Path) -> Result<Vec<serde_json::Value>, HarnessError> {
    const SCRIPT: &str =
        "import json, sys, yaml\njson.dump(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8'))), sys.stdout)";
    let out = Command::new(program(workspace, "python")?)
        .args(["-c", SCRIPT])
        .arg(file)
        .output()
        .map_err(|source| HarnessError::Io { context: "running python to read YAML".into(), source })?;
    if !out.status.success() {
        return Err(HarnessError::NotReady(
            "yaml",
            format!("{}: {}", file.display(), String::from_utf8_lossy(&out.stderr)),
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| HarnessError::NotReady("yaml", format!("{}: {e}", file.display())))
}

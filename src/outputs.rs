//! `--output` files: each one is created (as a temporary file beside its target) before any
//! probe goes out, so a bad path fails in a second instead of after a sweep, and a report
//! replaces the old one only once it is written whole.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tempfile::NamedTempFile;

use crate::report::{self, Format, Report};

/// A report file waiting for its report.
pub struct ReportFile {
    format: Format,
    path: PathBuf,
    temp: NamedTempFile,
}

/// Opens every `--output` target. Fails (a usage error) when a folder is missing or not
/// writable, when a path is named twice, or when it is the profile being read.
pub fn open_all(
    outputs: &[(Format, PathBuf)],
    profile: Option<&Path>,
) -> anyhow::Result<Vec<ReportFile>> {
    let profile = profile.and_then(|p| p.canonicalize().ok());
    let mut files: Vec<ReportFile> = Vec::with_capacity(outputs.len());
    let mut seen: Vec<PathBuf> = Vec::with_capacity(outputs.len());
    for (format, path) in outputs {
        let name = path
            .file_name()
            .with_context(|| format!("--output {} names a folder, not a file", path.display()))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let dir = dir.canonicalize().map_err(|e| {
            anyhow::anyhow!(
                "cannot write the report to {}: its folder {}: {e} (create it, or check --output)",
                path.display(),
                dir.display()
            )
        })?;
        let target = dir.join(name);
        anyhow::ensure!(
            profile.as_ref() != Some(&target),
            "--output {} is the profile being read: write the report elsewhere",
            path.display()
        );
        anyhow::ensure!(
            !seen.contains(&target),
            "--output {} is named twice: give each report its own file",
            path.display()
        );
        let temp = NamedTempFile::new_in(&dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot write the report to {}: {e} (check --output and the folder's permissions)",
                path.display()
            )
        })?;
        seen.push(target);
        files.push(ReportFile {
            format: *format,
            path: path.clone(),
            temp,
        });
    }
    Ok(files)
}

impl ReportFile {
    /// Writes the report whole, then renames it over the target: a full disk or a crash
    /// leaves yesterday's report in place, never half of today's.
    pub fn write(self, report: &Report) -> anyhow::Result<()> {
        let ReportFile {
            format,
            path,
            mut temp,
        } = self;
        let fail = |e: std::io::Error| {
            anyhow::anyhow!("cannot write the report to {}: {e}", path.display())
        };
        let text = report::render(report, format, false);
        temp.write_all(text.as_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(fail)?;
        temp.persist(&path).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

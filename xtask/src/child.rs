//! Running a benchmark as a child process and measuring it: wall time and peak RSS.
//!
//! Peak RSS comes from `wait4`'s `ru_maxrss`, the largest resident set the child (and any
//! descendant it waited for) ever had, so every figure's memory is its own process's, not
//! the orchestrator's.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::Result;

/// What a finished child printed and used.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
    /// Peak resident set size in bytes.
    pub peak_rss: u64,
    /// Wall-clock seconds from spawn to exit.
    pub wall_secs: f64,
    /// User + system CPU seconds.
    pub cpu_secs: f64,
}

/// Runs `cmd` to completion, capturing stdout and stderr (stderr is also echoed, indented,
/// when `echo` is set, so long benchmarks show their progress). Fails with the child's last
/// output lines when it exits unsuccessfully.
pub fn run(mut cmd: Command, what: &str, echo: bool) -> Result<Finished> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{what}: cannot start {cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().ok_or("no stdout pipe")?;
    let err = child.stderr.take().ok_or("no stderr pipe")?;
    let err_reader = std::thread::spawn(move || {
        let mut collected = String::new();
        let mut lines = std::io::BufReader::new(err);
        let mut line = String::new();
        use std::io::BufRead;
        while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if echo {
                eprint!("    | {line}");
            }
            collected.push_str(&line);
            line.clear();
        }
        collected
    });
    let mut stdout = String::new();
    out.read_to_string(&mut stdout)?;
    let stderr = err_reader.join().unwrap_or_default();

    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; `pid` is our own unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = loop {
        // SAFETY: as above; `status` and `usage` outlive the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall_secs = started.elapsed().as_secs_f64();
    if waited != pid {
        return Err(format!("{what}: wait4 failed: {}", std::io::Error::last_os_error()).into());
    }
    // The child is reaped; make sure std's handle does not try again.
    std::mem::forget(child);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let finished = Finished {
        stdout,
        stderr,
        // Linux reports ru_maxrss in KiB.
        peak_rss: usage.ru_maxrss.max(0) as u64 * 1024,
        wall_secs,
        cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
    };
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !exited_ok {
        let tail: Vec<&str> = finished.stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{what} failed ({}):\n{}",
            describe_status(status),
            tail.join("\n")
        )
        .into());
    }
    Ok(finished)
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status}")
    }
}

/// This binary with `args`, as a child.
pub fn this_exe(args: &[String]) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(args);
    Ok(cmd)
}

/// The lines of `stdout` that start with `STRATA-BENCH `, each parsed into its figure name
/// and `key=value` fields (numbers where they parse).
pub fn bench_lines(stdout: &str) -> Vec<BenchLine> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("STRATA-BENCH "))
        .filter_map(|rest| {
            let mut figure = None;
            let mut fields = Vec::new();
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=')?;
                if k == "figure" {
                    figure = Some(v.to_string());
                } else {
                    fields.push((k.to_string(), v.to_string()));
                }
            }
            Some(BenchLine {
                figure: figure?,
                fields,
            })
        })
        .collect()
}

/// One machine-readable result line of a benchmark:
/// `STRATA-BENCH figure=<id> key=value …`.
#[derive(Debug, Clone)]
pub struct BenchLine {
    pub figure: String,
    pub fields: Vec<(String, String)>,
}

impl BenchLine {
    /// The field `key` as a number.
    pub fn num(&self, key: &str) -> Option<f64> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The field `key` as text.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The first line of `stdout` for `figure`, or an error naming what is missing.
pub fn find_line(lines: &[BenchLine], figure: &str, what: &str) -> Result<BenchLine> {
    lines
        .iter()
        .find(|l| l.figure == figure)
        .cloned()
        .ok_or_else(|| {
            format!("{what}: no `STRATA-BENCH figure={figure}` line in its output").into()
        })
}

/// Whether `path` looks like a cargo workspace root.
pub fn is_workspace_root(path: &Path) -> bool {
    path.join("Cargo.toml").is_file() && path.join("crates").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_are_parsed_and_prose_ignored() {
        let out = "freeze: pack 120 MB/s\nSTRATA-BENCH figure=freeze value=120.5 baseline=150 ratio=0.8 unit=MB/s\nnoise STRATA-BENCH figure=x\nSTRATA-BENCH value=1\n";
        let lines = bench_lines(out);
        assert_eq!(lines.len(), 1, "only whole lines with a figure count");
        let l = &lines[0];
        assert_eq!(l.figure, "freeze");
        assert_eq!(l.num("value"), Some(120.5));
        assert_eq!(l.text("unit"), Some("MB/s"));
        assert_eq!(l.num("unit"), None);
        assert!(find_line(&lines, "pack_read", "t").is_err());
    }

    #[test]
    fn a_child_is_measured_and_its_failure_reported() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo STRATA-BENCH figure=t value=1; echo progress >&2",
        ]);
        let done = run(cmd, "sh", false).unwrap();
        assert_eq!(bench_lines(&done.stdout).len(), 1);
        assert_eq!(done.stderr, "progress\n");
        assert!(done.peak_rss > 0, "ru_maxrss of the child");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2; exit 3"]);
        let e = run(cmd, "sh", false).unwrap_err().to_string();
        assert!(e.contains("exit code 3") && e.contains("boom"), "{e}");
    }
}

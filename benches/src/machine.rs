//! What the numbers were measured on: printed above every table.

use std::process::Command;

/// The machine and the run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Cores this process may use.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// `openssl version`.
    pub openssl: String,
    /// UTC date and time the run started.
    pub date: String,
    /// `/proc/loadavg`'s 1-minute load when the run started.
    pub load: String,
    /// The crypto backend the applet was built with.
    pub backend: &'static str,
}

fn command(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1-minute load average.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Machine {
    /// Reads the machine's description now.
    pub fn describe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned()),
            openssl: command("openssl", &["version"]),
            date: command("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            load: load(),
            backend: if cfg!(feature = "openssl") {
                "OpenSSL (feature `openssl`)"
            } else {
                "RustCrypto (default)"
            },
        }
    }

    /// One line for the caption of each table.
    pub fn caption(&self) -> String {
        format!(
            "{} ({} cores, shared with other builds), Linux {}, {}, {}",
            self.cpu, self.cores, self.kernel, self.openssl, self.date
        )
    }
}

//! `vscard-bench`: runs the harnesses and rewrites the tables of
//! `BENCHMARKS.md`.
//!
//! ```text
//! cargo build --release -p vscard -p vscard-benches --features vscard-benches/openssl --bins &&
//!   cargo run --release -p vscard-benches --features openssl --bin vscard-bench -- --write BENCHMARKS.md
//! ```
//!
//! (`--bins` builds `vscard-alloc` too, which counts allocations in a
//! process of its own.)
//!
//! Options: `--write PATH` (rewrite the generated part of PATH; without
//! it the tables are only printed), `--seconds N` (time per measurement,
//! default 2), `--quick` (tiny budgets and sizes: checks that everything
//! runs), `--no-pcscd` (skip the pcscd harness, which needs root and the
//! private namespaces). The whole program re-runs itself inside private
//! namespaces first (mount, network, pid) so that it can start its own
//! pcscd.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use vscard_benches::machine::Machine;
use vscard_benches::report::{self, Section};
use vscard_benches::{
    BenchError, allocations, crypto, fixture, hosted, inprocess, issuance, link, ocsp, pcscd,
    persistence, scale,
};

/// The command documented in BENCHMARKS.md and README.md.
const COMMAND: &str = "cargo build --release -p vscard -p vscard-benches --features vscard-benches/openssl --bins && \
     cargo run --release -p vscard-benches --features openssl --bin vscard-bench -- --write BENCHMARKS.md";

struct Options {
    write: Option<PathBuf>,
    seconds: u64,
    quick: bool,
    pcscd: bool,
    /// `--only N,M`: just these tables (printed, never written).
    only: Option<Vec<u32>>,
}

impl Options {
    fn wanted(&self, table: u32) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(&table))
    }
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        write: None,
        seconds: 2,
        quick: false,
        pcscd: true,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write" => options.write = Some(args.next().ok_or("--write needs a path")?.into()),
            "--seconds" => {
                options.seconds = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a whole number")?;
            }
            "--quick" => options.quick = true,
            "--no-pcscd" => options.pcscd = false,
            "--only" => {
                let list = args.next().ok_or("--only needs table numbers (4,10)")?;
                let tables = list
                    .split(',')
                    .map(|n| n.trim().parse::<u32>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| format!("--only {list:?}: table numbers, as 4,10"))?;
                options.only = Some(tables);
            }
            "-h" | "--help" => {
                return Err(format!(
                    "usage: vscard-bench [--write BENCHMARKS.md] [--seconds N] [--quick] [--no-pcscd] [--only N,M]\n\
                     regenerate the tables: {COMMAND}"
                ));
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if options.only.is_some() && options.write.is_some() {
        return Err(
            "--only prints some tables: it cannot --write the file (the others would go)"
                .to_owned(),
        );
    }
    Ok(options)
}

fn step(name: &str) {
    eprintln!(
        "vscard-bench: {name} (load {})",
        vscard_benches::machine::load()
    );
}

fn run(options: &Options) -> Result<Vec<Section>, BenchError> {
    let budget = if options.quick {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(options.seconds)
    };
    let seconds = if options.quick { 1 } else { options.seconds };
    step("issuing the demo card");
    let image = fixture::image(&fixture::demo_state()?);
    let sizes: &[usize] = if options.quick {
        &[1, 10]
    } else {
        &[1, 10, 100, 1000]
    };
    step("allocations (vscard-alloc)");
    let allocations = allocations::from_sibling(&image, sizes)?;
    let mut sections = Vec::new();
    let mut round_trip = None;
    if options.pcscd && options.wanted(1) {
        step("1. through pcscd");
        let (section, rt) = pcscd::run(&image, budget)?;
        sections.push(section);
        round_trip = Some(rt);
    }
    if options.wanted(2) {
        step("2. in-process");
        sections.push(inprocess::run(
            &image,
            budget,
            round_trip.as_ref(),
            allocations.as_ref(),
        )?);
    }
    if options.wanted(3) {
        step("3. crypto");
        sections.push(crypto::run(&image, seconds)?);
    }
    if options.wanted(4) {
        step("4. persistence");
        sections.push(persistence::run(&image, budget)?);
    }
    if options.wanted(5) {
        step("5. scale");
        sections.push(scale::run(&image, sizes, budget, allocations.as_ref())?);
    }
    if options.wanted(6) {
        step("6. issuance");
        sections.push(issuance::run(
            &image,
            if options.quick { 1 } else { 7 },
            budget,
        )?);
    }
    // `openssl ocsp -port` listens on every interface: only inside the
    // private network namespace the pcscd harness runs in.
    if options.pcscd && options.wanted(7) {
        step("7. OCSP");
        match ocsp::run(budget)? {
            Some(section) => sections.push(section),
            None => eprintln!(
                "vscard-bench: skipping the OCSP harness: build vscard beside vscard-bench \
                 (cargo build --release -p vscard)"
            ),
        }
    }
    if options.pcscd && options.wanted(8) {
        step("8. the link");
        sections.push(link::run(&image, budget)?);
    }
    if options.wanted(9) {
        // A SoftHSM2 token (or another module) named by the environment: the
        // module reads its configuration (SOFTHSM2_CONF) when initialised.
        match (
            std::env::var_os("VSCARD_BENCH_PKCS11_MODULE"),
            std::env::var("VSCARD_BENCH_PKCS11_TOKEN"),
            std::env::var(vscard_pkcs11::PIN_ENV),
        ) {
            (Some(module), Ok(token), Ok(pin)) => {
                step("9. PKCS#11 custody");
                sections.push(vscard_benches::custody::run(
                    std::path::Path::new(&module),
                    &token,
                    &pin,
                    budget,
                )?);
            }
            _ => eprintln!(
                "vscard-bench: skipping the PKCS#11 custody row: set VSCARD_BENCH_PKCS11_MODULE, \
                 VSCARD_BENCH_PKCS11_TOKEN and VSCARD_PKCS11_PIN (and SOFTHSM2_CONF for SoftHSM2), \
                 or install softhsm2 for a token of the run's own"
            ),
        }
    }
    if options.wanted(10) {
        step("10. the card host");
        let host_scale = if options.quick {
            hosted::HostScale::quick()
        } else {
            hosted::HostScale::full()
        };
        match hosted::run(&image, budget, &host_scale)? {
            Some(section) => sections.push(section),
            None => eprintln!(
                "vscard-bench: skipping the card host: no PostgreSQL (Debian package postgresql)"
            ),
        }
    }
    if options.wanted(11) {
        match std::env::var_os("VSCARD_BENCH_PYTHON") {
            Some(python) => {
                step("11. the Python bindings");
                let wheel = std::env::var_os("VSCARD_BENCH_WHEEL").map(std::path::PathBuf::from);
                let count = if options.quick { 2_000 } else { 200_000 };
                sections.push(vscard_benches::python::run(
                    std::path::Path::new(&python),
                    wheel.as_deref(),
                    count,
                )?);
            }
            None => eprintln!(
                "vscard-bench: skipping the Python bindings: set VSCARD_BENCH_PYTHON to a Python with \
                 the vscard wheel installed (and VSCARD_BENCH_WHEEL to the wheel for its size)"
            ),
        }
    }
    Ok(sections)
}

/// When no PKCS#11 token is named and SoftHSM2 is installed, runs this
/// benchmark again as a child with a token of its own (SoftHSM2 reads
/// `SOFTHSM2_CONF` when the module is initialised, and this process's
/// environment is not to be changed), and returns the child's exit code;
/// `None` to go on in this process.
fn rerun_with_a_token() -> Option<ExitCode> {
    if std::env::var_os("VSCARD_BENCH_PKCS11_MODULE").is_some()
        || vscard_testkit::softhsm::SoftHsm::module_path().is_none()
    {
        return None;
    }
    let token = match vscard_testkit::softhsm::SoftHsm::new("vscard-bench") {
        Ok(token) => token,
        Err(e) => {
            eprintln!("vscard-bench: no SoftHSM2 token for the PKCS#11 custody row: {e}");
            return None;
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("vscard-bench: cannot run itself again with a SoftHSM2 token: {e}");
            return None;
        }
    };
    let status = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("SOFTHSM2_CONF", token.conf())
        .env("VSCARD_BENCH_PKCS11_MODULE", token.module())
        .env("VSCARD_BENCH_PKCS11_TOKEN", token.label())
        .env(
            vscard_pkcs11::PIN_ENV,
            vscard_testkit::softhsm::SoftHsm::USER_PIN,
        )
        .status();
    drop(token);
    Some(match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("vscard-bench: {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("vscard-bench: cannot run itself again with a SoftHSM2 token: {e}");
            ExitCode::FAILURE
        }
    })
}

fn main() -> ExitCode {
    let mut options = match parse() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if let Some(code) = rerun_with_a_token() {
        return code;
    }
    if options.pcscd
        && let Err(e) = vscard_testkit::rerun_process_in_namespace()
    {
        eprintln!("vscard-bench: skipping the pcscd harness: {e}");
        options.pcscd = false;
    }
    let machine = Machine::describe();
    let sections = match run(&options) {
        Ok(sections) => sections,
        Err(e) => {
            eprintln!("vscard-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = COMMAND.to_owned();
    if options.quick {
        command.push_str(" --quick");
    } else if options.seconds != 2 {
        command.push_str(&format!(" --seconds {}", options.seconds));
    }
    if !options.pcscd {
        command.push_str(" (pcscd harness skipped)");
    }
    let generated = report::render(&machine, &command, &sections);
    println!("{generated}");
    if let Some(path) = &options.write {
        if let Err(e) = report::write(path, &generated) {
            eprintln!("vscard-bench: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("vscard-bench: wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

//! The shippable artefact and the CI recipe (issue 18 item 6), so that
//! neither can rot:
//!
//! - the manual pages committed in `cli/man/` (shipped by the Debian
//!   package) are what `vscard man` renders from the clap definitions now;
//! - the GitHub Actions workflow, the GitLab CI job and the Dockerfile all
//!   call the one shared script, `examples/ci/vscard-ci.sh`, with the steps
//!   read here from those files; and those steps, run in fresh private
//!   namespaces (a tmpfs on /run/pcscd, so no pcscd answers, `lo` up),
//!   start pcscd, serve the demo card, wait on `vscard ctl wait`, log in
//!   with pkcs11-tool and with pyscard, and stop exactly what they
//!   started; a pcscd already running is used and left running.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{VSCARD, run};
use vscard_testkit::python::python_with;
use vscard_testkit::{private_namespace, private_pcscd};

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn script() -> PathBuf {
    repo().join("examples/ci/vscard-ci.sh")
}

/// The script's steps a recipe file runs, in the file's order: each word
/// after a mention of `vscard-ci.sh` (`vscard-ci.sh start`, or
/// `"/usr/local/bin/vscard-ci.sh", "run"` in a Dockerfile's exec form).
fn steps_in(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
    let mut steps = Vec::new();
    for line in text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
    {
        for (_, rest) in line
            .match_indices("vscard-ci.sh")
            .map(|(i, m)| line.split_at(i + m.len()))
        {
            let word: String = rest
                .trim_start_matches(['"', ',', ' '])
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            if !word.is_empty() {
                steps.push(word);
            }
        }
    }
    steps
}

#[test]
fn every_recipe_runs_the_shared_script_steps() {
    let ci = ["install", "start", "check", "stop"];
    assert_eq!(steps_in("examples/ci/github-actions.yml"), ci);
    assert_eq!(steps_in("examples/ci/gitlab-ci.yml"), ci);
    // Installed at build time, `run` as the entry point.
    assert_eq!(steps_in("Dockerfile"), ["install", "run"]);
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("FROM debian:bookworm"), "{dockerfile}");
    assert!(
        dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/vscard-ci.sh\", \"run\"]"),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("COPY examples/ci/vscard-ci.sh /usr/local/bin/vscard-ci.sh"),
        "{dockerfile}"
    );
}

#[test]
fn the_committed_manual_pages_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(Command::new(VSCARD).args(["man", "--out"]).arg(dir.path()));
    assert!(output.status.success());
    let names = |folder: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    let committed = repo().join("cli/man");
    let rendered = names(dir.path());
    assert_eq!(
        rendered,
        names(&committed),
        "regenerate with: cargo run -p vscard -- man --out cli/man"
    );
    for name in &rendered {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(name)).unwrap(),
            std::fs::read_to_string(committed.join(name)).unwrap(),
            "cli/man/{name} is stale: cargo run -p vscard -- man --out cli/man"
        );
    }
    for page in [
        "vscard.1",
        "vscard-serve.1",
        "vscard-ctl.1",
        "vscard-pki-init.1",
    ] {
        assert!(rendered.iter().any(|name| name == page), "{rendered:?}");
    }
    // The hidden command is neither a page nor in the main page.
    assert!(!rendered.iter().any(|name| name == "vscard-man.1"));
    let main = std::fs::read_to_string(dir.path().join("vscard.1")).unwrap();
    assert!(main.contains("vscard\\-serve(1)"), "{main}");
    assert!(!main.contains("vscard\\-man"), "{main}");
    let serve = std::fs::read_to_string(dir.path().join("vscard-serve.1")).unwrap();
    assert!(serve.contains("\\-\\-ready\\-file"), "{serve}");
    // A missing folder is bad input.
    let missing = run(Command::new(VSCARD).args(["man", "--out", "/nonexistent/man"]));
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "vscard: --out: /nonexistent/man is not an existing folder\n"
    );
}

/// One run of the script with `step` (and more arguments), the vscard
/// under test as `VSCARD`, its state in `dir`.
fn step(dir: &Path, python: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    run(&mut step_command(dir, python, args, extra_env))
}

/// The command [`step`] runs.
fn step_command(dir: &Path, python: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(script())
        .args(args)
        .current_dir(repo())
        .env("VSCARD", VSCARD)
        .env("VSCARD_CI_DIR", dir)
        .env("VSCARD_PYTHON", python)
        .env("VSCARD_READY_TIMEOUT", "20")
        .env_remove("VSCARD_DEB")
        .env_remove("VSCARD_CARD")
        .env_remove("VSCARD_PIN")
        .env_remove("GITHUB_ENV")
        .env_remove("RUNNER_TEMP")
        .env_remove("PCSCLITE_CSOCK_NAME");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The names of the processes running in this (private) pid namespace,
/// zombies left out: the test is the namespace's init, which inherits the
/// script's background processes and does not reap them.
fn processes() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `PID (COMM) STATE ...`
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            (!rest.starts_with('Z')).then(|| comm.to_owned())
        })
        .collect()
}

/// Stops the `vscard serve` of the script's pid file (SIGTERM) and waits
/// until it has exited.
fn stop_serve(dir: &Path) {
    let pid: i32 = std::fs::read_to_string(dir.join("serve.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
    };
    let started = std::time::Instant::now();
    while !gone() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "serve did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// True if something accepts a connection on pcscd's socket.
fn pcscd_answers() -> bool {
    std::os::unix::net::UnixStream::connect("/run/pcscd/pcscd.comm").is_ok()
}

/// The lines `check` prints on success with the demo card (RSA-2048 in
/// slot 9A).
const CHECK_LINES: &str = "vscard-ci: pkcs11-tool: logged in, signed with key 01 (SHA256-RSA-PKCS, 256 bytes)\n\
                           vscard-ci: pyscard: VERIFY PIN in Virtual PCD 00 00 -> 9000\n";

#[test]
fn the_ci_steps_start_pcscd_serve_log_in_and_stop_what_they_started() {
    if !private_namespace() {
        return;
    }
    let test = "the_ci_steps_start_pcscd_serve_log_in_and_stop_what_they_started";
    let Some(python) = python_with(test, &["smartcard"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    assert!(!pcscd_answers());
    for name in steps_in("examples/ci/github-actions.yml") {
        let output = step(dir, &python, &[&name], &[]);
        assert!(output.status.success(), "step {name} failed");
        let out = stdout(&output);
        match name.as_str() {
            "install" => {
                // The tests' machine has the packages (.ci/install-deps).
                assert!(
                    out.starts_with(
                        "vscard-ci: pcscd vsmartcard-vpcd opensc already installed\n\
                     vscard-ci: vscard 0.1.0 at "
                    ),
                    "{out}"
                );
            }
            "start" => {
                let first = format!(
                    "vscard-ci: no pcscd answers on /run/pcscd/pcscd.comm: starting one \
                     (stopped again by '{} stop')\n",
                    script().display()
                );
                assert!(out.starts_with(&first), "{out}");
                assert!(out.contains("card 0 is present\n"), "{out}");
                assert!(
                    out.contains(
                        "card 0: inserted, in Virtual PCD 00 00 (vpcd 127.0.0.1:35963), powered"
                    ),
                    "{out}"
                );
                assert!(
                    out.ends_with(&format!(
                        "vscard-ci: ready: vscard ctl {}/control.sock status\n",
                        dir.display()
                    )),
                    "{out}"
                );
                assert!(dir.join("ready").is_file());
                assert!(pcscd_answers());
                let running = processes();
                assert!(running.iter().any(|p| p == "pcscd"), "{running:?}");
                assert!(running.iter().any(|p| p == "vscard"), "{running:?}");
                // A wrong PIN fails the check (and costs a try, which the
                // right PIN below gives back).
                let wrong = step(dir, &python, &["check"], &[("VSCARD_PIN", "000000")]);
                assert_eq!(wrong.status.code(), Some(1));
                assert!(
                    String::from_utf8_lossy(&wrong.stderr).contains("CKR_PIN_INCORRECT")
                        && String::from_utf8_lossy(&wrong.stderr)
                            .ends_with("vscard-ci: pkcs11-tool could not log in\n"),
                    "{wrong:?}"
                );
                // A second start is refused while the first serves.
                let again = step(dir, &python, &["start"], &[]);
                assert_eq!(again.status.code(), Some(1));
                assert!(
                    String::from_utf8_lossy(&again.stderr)
                        .starts_with("vscard-ci: already started"),
                    "{again:?}"
                );
                // When serve has ended, a new start keeps the pcscd the
                // first one started as its own (stop stops it).
                stop_serve(dir);
                let restarted = step(dir, &python, &["start"], &[]);
                assert!(restarted.status.success());
                assert!(
                    stdout(&restarted)
                        .starts_with("vscard-ci: using the pcscd an earlier start started (pid "),
                    "{restarted:?}"
                );
            }
            "check" => assert_eq!(out, CHECK_LINES),
            "stop" => {
                let pids: Vec<&str> = out.lines().collect();
                assert_eq!(pids.len(), 2, "{out}");
                assert!(
                    pids[0].starts_with("vscard-ci: stopping vscard serve (pid "),
                    "{out}"
                );
                assert!(
                    pids[1].starts_with("vscard-ci: stopping the pcscd it started (pid "),
                    "{out}"
                );
            }
            other => panic!("a step the test does not know: {other}"),
        }
    }
    assert!(!pcscd_answers());
    let running = processes();
    assert!(
        !running.iter().any(|p| p == "pcscd" || p == "vscard"),
        "{running:?}"
    );
    assert!(!dir.join("ready").exists(), "serve removes its ready file");
    // Stopping again is a no-op.
    let again = step(dir, &python, &["stop"], &[]);
    assert!(again.status.success());
    assert_eq!(stdout(&again), "vscard-ci: nothing to stop\n");
}

#[test]
fn the_ci_steps_use_a_running_pcscd_and_leave_it_running() {
    let Some(mut pcscd) = private_pcscd() else {
        return;
    };
    let test = "the_ci_steps_use_a_running_pcscd_and_leave_it_running";
    let Some(python) = python_with(test, &["smartcard"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let start = step(dir, &python, &["start"], &[]);
    assert!(start.status.success());
    assert!(
        stdout(&start)
            .starts_with("vscard-ci: using the pcscd that answers on /run/pcscd/pcscd.comm\n"),
        "{start:?}"
    );
    let check = step(dir, &python, &["check"], &[]);
    assert!(check.status.success());
    assert_eq!(stdout(&check), CHECK_LINES);
    let stop = step(dir, &python, &["stop"], &[]);
    assert!(stop.status.success());
    let out = stdout(&stop);
    assert!(
        out.starts_with("vscard-ci: stopping vscard serve (pid "),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        pcscd.is_running(),
        "the script stopped a pcscd it did not start"
    );
    assert!(pcscd_answers());
}

#[test]
fn the_docker_entry_point_runs_the_command_once_ready_and_stops_everything() {
    if !private_namespace() {
        return;
    }
    let test = "the_docker_entry_point_runs_the_command_once_ready_and_stops_everything";
    let Some(python) = python_with(test, &["smartcard"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // The Dockerfile's steps: `install` at build time, then the entry point
    // `run` with the container's command.
    let steps = steps_in("Dockerfile");
    assert_eq!(steps, ["install", "run"]);
    let install = step(dir, &python, &["install"], &[]);
    assert!(install.status.success());
    let script = script();
    let script = script.to_str().unwrap();
    let checked = step(dir, &python, &["run", "bash", script, "check"], &[]);
    assert!(checked.status.success());
    let out = stdout(&checked);
    assert!(out.contains(CHECK_LINES), "{out}");
    let last: Vec<&str> = out.lines().rev().take(2).collect();
    assert!(
        last[1].starts_with("vscard-ci: stopping vscard serve (pid "),
        "{out}"
    );
    assert!(
        last[0].starts_with("vscard-ci: stopping the pcscd it started (pid "),
        "{out}"
    );
    // The command's exit code is the container's.
    let failed = step(dir, &python, &["run", "sh", "-c", "exit 7"], &[]);
    assert_eq!(failed.status.code(), Some(7));
    assert!(!pcscd_answers());
    // Without a command (`docker run IMAGE`): serves until SIGTERM (`docker
    // stop`), then stops everything and exits 0.
    let mut serving = step_command(dir, &python, &["run"], &[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its readiness: the line it prints once start is done.
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(serving.stdout.take().unwrap()));
    let mut seen = String::new();
    loop {
        let line = lines.next().expect("run ended before serving").unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line == "vscard-ci: serving until SIGTERM or SIGINT" {
            break;
        }
    }
    assert!(dir.join("ready").is_file());
    assert!(pcscd_answers());
    let pid = rustix::process::Pid::from_child(&serving);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = serving.wait().unwrap();
    println!("{seen}");
    assert_eq!(status.code(), Some(0), "{seen}");
    let last: Vec<&str> = seen.lines().rev().take(2).collect();
    assert!(
        last[1].starts_with("vscard-ci: stopping vscard serve (pid "),
        "{seen}"
    );
    assert!(
        last[0].starts_with("vscard-ci: stopping the pcscd it started (pid "),
        "{seen}"
    );
    assert!(!pcscd_answers());
    let running = processes();
    assert!(
        !running.iter().any(|p| p == "pcscd" || p == "vscard"),
        "{running:?}"
    );
}

#[test]
fn the_ci_steps_refuse_a_planted_folder_and_never_stop_a_stranger_with_a_reused_pid() {
    let python = PathBuf::from("python3");
    let tmp = tempfile::tempdir().unwrap();
    // A link planted at the state folder's name: refused, nothing written
    // through it.
    let target = tmp.path().join("elsewhere");
    std::fs::create_dir(&target).unwrap();
    let planted = tmp.path().join("planted");
    std::os::unix::fs::symlink(&target, &planted).unwrap();
    let output = step(&planted, &python, &["start"], &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not a folder of yours"),
        "{output:?}"
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // A pid file naming a process that is not vscard serve or pcscd (the
    // pid reused after they died): `stop` leaves it alone.
    let dir = tmp.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    let mut stranger = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(dir.join("serve.pid"), stranger.id().to_string()).unwrap();
    std::fs::write(dir.join("pcscd.pid"), stranger.id().to_string()).unwrap();
    let output = step(&dir, &python, &["stop"], &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was stopped"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();

    // A timeout that is not whole seconds is bad input.
    let output = step(
        &dir,
        &python,
        &["start"],
        &[("VSCARD_READY_TIMEOUT", "a[$(id)]")],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

//! The cost of one committed PIN try: a wrong VERIFY on a card whose
//! image lives in a [`FileStore`] (the try is a journal slot written in
//! place and `fdatasync`ed; every [`JOURNAL_SLOTS`]th commit rewrites the
//! image: temporary file, fsync, rename, fsync of the folder), against a
//! bare write + fsync + rename of the image's size in the same folder, in
//! the same run.
//!
//! Between two timed wrong VERIFYs an untimed right one resets the
//! counter, so the card never blocks. Medians are compared (fsync has a
//! long tail on a shared disk), and means too: they include the image
//! rewrites.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use vscard_emulator::{CardImage, FileStore, JOURNAL_SLOTS};

use crate::apdu::{self, DEMO_PIN};
use crate::measure::{self, Sample, human, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture, io_error};

/// Timed wrong VERIFYs on a card stored in `dir`.
pub fn pin_try(
    image: &CardImage,
    dir: &Path,
    budget: Duration,
) -> Result<(Sample, u64), BenchError> {
    let path = dir.join("card.json");
    FileStore::write(&path, image)?;
    let mut card = fixture::card_on(FileStore::open(&path)?)?;
    let wrong = apdu::verify("wrong VERIFY", b"999999", 0x63C0);
    let right = apdu::verify("VERIFY", DEMO_PIN, 0x9000);
    let sample = measure::run_split(budget, 20, || {
        let started = Instant::now();
        apdu::perform(&mut card, &wrong, None)?;
        let took = started.elapsed();
        apdu::perform(&mut card, &right, None)?;
        Ok::<_, BenchError>(took)
    })?;
    let size = fs::metadata(&path).map_err(io_error("image size"))?.len();
    Ok((sample, size))
}

/// Writes `size` bytes to a temporary file in `dir`, fsyncs it, renames it
/// over `bare.json`, and (with `sync_dir`) fsyncs `dir`.
pub fn bare_write(
    dir: &Path,
    size: u64,
    sync_dir: bool,
    budget: Duration,
) -> Result<Sample, BenchError> {
    let bytes = vec![b'x'; usize::try_from(size).unwrap_or(usize::MAX)];
    let tmp = dir.join(".bare.json.tmp");
    let target = dir.join("bare.json");
    measure::run(budget, 20, || {
        let mut file = File::create(&tmp).map_err(io_error("bare write"))?;
        file.write_all(&bytes).map_err(io_error("bare write"))?;
        file.sync_all().map_err(io_error("bare fsync"))?;
        drop(file);
        fs::rename(&tmp, &target).map_err(io_error("bare rename"))?;
        if sync_dir {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error("bare folder fsync"))?;
        }
        Ok::<_, BenchError>(())
    })
}

/// Times a commit that rewrites the image (what every
/// [`JOURNAL_SLOTS`]th commit costs), through a [`FileStore`] in `dir`.
pub fn image_write(image: &CardImage, dir: &Path, budget: Duration) -> Result<Sample, BenchError> {
    use vscard_emulator::Store as _;
    let mut store = FileStore::open(dir.join("rewritten.json"))?;
    measure::run(budget, 20, || store.commit(image).map_err(BenchError::from))
}

/// The persistence table.
pub fn run(image: &CardImage, budget: Duration) -> Result<Section, BenchError> {
    let mut section = Section::new("4. One committed PIN try", "vscard / bare write (medians)");
    let dir = tempfile::Builder::new()
        .prefix("vscard-bench-")
        .tempdir_in(std::env::temp_dir())
        .map_err(io_error("temporary folder"))?;
    // Interleave so drift hits both alike.
    let (try_a, size) = pin_try(image, dir.path(), budget / 2)?;
    let bare_a = bare_write(dir.path(), size, false, budget / 2)?;
    let dir_a = bare_write(dir.path(), size, true, budget / 2)?;
    let (try_b, _) = pin_try(image, dir.path(), budget / 2)?;
    let bare_b = bare_write(dir.path(), size, false, budget / 2)?;
    let dir_b = bare_write(dir.path(), size, true, budget / 2)?;
    let median = |a: &Sample, b: &Sample| (a.median + b.median) / 2;
    let mean = |a: &Sample, b: &Sample| (a.elapsed + b.elapsed) / (a.count + b.count).max(1) as u32;
    let ours = median(&try_a, &try_b);
    let bare = median(&bare_a, &bare_b);
    let bare_dir = median(&dir_a, &dir_b);
    let what = format!(
        "wrong VERIFY, `FileStore`: a journal slot + fdatasync (image {size} bytes rewritten every {JOURNAL_SLOTS} commits)"
    );
    section.rows.push(Row::new(
        format!("{what}, median"),
        human(ours),
        format!("write + fsync + rename of {size} bytes: {}", human(bare)),
        ratio(ours.as_secs_f64(), bare.as_secs_f64()),
        Goal::AtMost(1.2),
    ));
    let (ours_mean, bare_mean) = (mean(&try_a, &try_b), mean(&bare_a, &bare_b));
    section.rows.push(Row::new(
        format!("{what}, mean (image rewrites included)"),
        human(ours_mean),
        format!("write + fsync + rename, mean: {}", human(bare_mean)),
        ratio(ours_mean.as_secs_f64(), bare_mean.as_secs_f64()),
        Goal::AtMost(1.2),
    ));
    let rewrite = image_write(image, dir.path(), budget / 2)?;
    section.rows.push(Row::new(
        "an image rewrite (encoding, temporary file, fsync, rename, folder fsync)",
        human(rewrite.median),
        format!("write + fsync + rename + folder fsync: {}", human(bare_dir)),
        ratio(rewrite.median.as_secs_f64(), bare_dir.as_secs_f64()),
        Goal::None,
    ));
    // The CPU part of a commit: the same card on tmpfs, where fsync is free.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let cpu_dir = tempfile::Builder::new()
            .prefix("vscard-bench-")
            .tempdir_in(shm)
            .map_err(io_error("temporary folder on /dev/shm"))?;
        let (cpu, _) = pin_try(image, cpu_dir.path(), budget / 2)?;
        section.rows.push(Row::new(
            "wrong VERIFY, `FileStore` on tmpfs (encoding + syscalls, flushes free)",
            human(cpu.median),
            format!("write + fsync + rename on disk: {}", human(bare)),
            ratio(cpu.median.as_secs_f64(), bare.as_secs_f64()),
            Goal::None,
        ));
    }
    section.notes.push(format!(
        "p99: vscard {}, bare write {}, with folder fsync {}; {} timed tries.",
        human(try_a.p99.max(try_b.p99)),
        human(bare_a.p99.max(bare_b.p99)),
        human(dir_a.p99.max(dir_b.p99)),
        try_a.count + try_b.count,
    ));
    section.notes.push(format!(
        "Folder: {} ({}); the image is the demo card's (2 RSA-2048 + 2 P-256 keys, 4 certificates).",
        std::env::temp_dir().display(),
        file_system(&std::env::temp_dir()),
    ));
    Ok(section)
}

/// The file system type of `path` (`stat -f`), for the notes.
fn file_system(path: &Path) -> String {
    std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown file system".to_owned())
}

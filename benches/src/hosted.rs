//! The card host's costs on a PostgreSQL cluster of the run's own
//! (`vscard_testkit::postgres`): a committed PIN try through
//! [`PostgresStore`] against a bare single-row `UPDATE` (autocommit, so
//! one round trip and one durable commit) on the same server, and a
//! session open (lease + load + the card built on the store).
//!
//! A wrong VERIFY commits once (the try, before the compare); the right
//! VERIFY after it, which resets the counter, twice (its try, then the
//! reset): a timed pair is three commits of one part each. Both sides run in turn ([`measure::run_pair`]) so a drifting
//! machine hits them alike.
//!
//! Then the scale rows, on real `vscard host` processes
//! ([`crate::host_process`]; `vscard` must be built beside this program,
//! else they are skipped, saying so): a host's resident memory with
//! [`HostScale::cards`] cards in the database against with one (an idle
//! card must cost a host nothing), its memory per open session, and APDUs
//! per second with [`HostScale::sessions`] sessions on one host against
//! the same number spread over two. The cards are cloned in SQL from the
//! first one ([`Database::put_card`] of ten thousand cards would take
//! minutes of commits), each with a device enrolled for it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vscard_emulator::CardImage;
use vscard_host::{CardOptions, Database, DeviceRole, PostgresStore, holder_name};
use vscard_link::Identity;
use vscard_testkit::postgres::PrivatePostgres;

use crate::apdu::{self, DEMO_PIN};
use crate::host_process::{
    Client, Device, HostProcess, OPENING_AT_ONCE, Session, cpu_time, vscard_beside,
};
use crate::measure::{self, human, rate, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture};

/// SELECT PIV (a non-crypto APDU, no commit): what the throughput row
/// sends.
const SELECT_PIV: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00,
];

/// The goal per open session on a host (issue 16).
pub const SESSION_BUDGET: u64 = 64 * 1024;

/// How many cards and sessions the scale rows use.
#[derive(Clone, Debug)]
pub struct HostScale {
    /// Cards in the database (at least twice the sessions, plus one).
    pub cards: usize,
    /// Sessions open at once.
    pub sessions: usize,
    /// The `vscard` binary the hosts run; `None` skips the scale rows.
    pub vscard: Option<PathBuf>,
}

impl HostScale {
    /// What the issue asks: 10,000 cards, 100 sessions.
    pub fn full() -> HostScale {
        HostScale {
            cards: 10_000,
            sessions: 100,
            vscard: vscard_beside(),
        }
    }

    /// `--quick`: 200 cards, 10 sessions.
    pub fn quick() -> HostScale {
        HostScale {
            cards: 200,
            sessions: 10,
            vscard: vscard_beside(),
        }
    }
}

fn host(error: impl std::fmt::Display) -> BenchError {
    BenchError::Host(error.to_string())
}

/// The card-host table; `None` when PostgreSQL is not installed.
pub fn run(
    image: &CardImage,
    budget: Duration,
    scale: &HostScale,
) -> Result<Option<Section>, BenchError> {
    let cluster = match PrivatePostgres::start_new() {
        Ok(cluster) => cluster,
        Err(vscard_testkit::postgres::PostgresError::Missing) => return Ok(None),
        Err(e) => return Err(host(e)),
    };
    let database = Database::connect(&cluster.url(), 4).map_err(host)?;
    database
        .put_card("bench", image, CardOptions::default())
        .map_err(host)?;
    let mut section = Section::new(
        "10. The card host (PostgreSQL)",
        "PIN try and session open: vscard / bare single-row UPDATE + COMMIT (medians); the others: see baseline",
    );
    let holder = holder_name().map_err(host)?;
    let lease = database
        .acquire("bench", &holder, Duration::from_secs(600))
        .map_err(host)?;
    let mut card = fixture::card_on(PostgresStore::new(database.clone(), lease.clone()))?;
    let wrong = apdu::verify("wrong VERIFY", b"999999", 0x63C0);
    let right = apdu::verify("VERIFY", DEMO_PIN, 0x9000);
    let mut bare = postgres::Client::connect(&cluster.url(), postgres::NoTls).map_err(host)?;
    bare.batch_execute(
        "SET synchronous_commit = on; CREATE TABLE bare (id integer PRIMARY KEY, tries integer); \
         INSERT INTO bare VALUES (1, 3)",
    )
    .map_err(host)?;
    let mut reset_timer = Duration::ZERO;
    let (ours, baseline) = measure::run_pair(
        budget,
        20,
        || {
            apdu::perform(&mut card, &wrong, None)?;
            let started = Instant::now();
            apdu::perform(&mut card, &right, None)?;
            reset_timer += started.elapsed();
            Ok::<_, BenchError>(())
        },
        || {
            bare.execute("UPDATE bare SET tries = tries - 1 WHERE id = 1", &[])
                .map(|_| ())
                .map_err(host)
        },
    )?;
    // `ours` timed a wrong VERIFY and the right one after it: three
    // commits (the wrong try; the right one's try and its reset).
    let ours_try = ours.median / 3;
    section.rows.push(Row::new(
        "a committed PIN try through `PostgresStore` (lease check + part upsert, one statement)",
        human(ours_try),
        format!("UPDATE one row + COMMIT: {}", human(baseline.median)),
        ratio(ours_try.as_secs_f64(), baseline.median.as_secs_f64()),
        Goal::AtMost(1.5),
    ));
    drop(card);
    database.release(&lease).map_err(host)?;
    let open = measure::run(budget, 10, || {
        let lease = database
            .acquire("bench", &holder, Duration::from_secs(600))
            .map_err(host)?;
        let card = fixture::card_on(PostgresStore::new(database.clone(), lease.clone()))?;
        drop(card);
        database.release(&lease).map_err(host)
    })?;
    section.rows.push(Row::new(
        "session open: lease + load + card built (and released)",
        human(open.median),
        format!("UPDATE one row + COMMIT: {}", human(baseline.median)),
        ratio(open.median.as_secs_f64(), baseline.median.as_secs_f64()),
        Goal::None,
    ));
    section.notes.push(format!(
        "The PIN try row is a third of a timed wrong + right VERIFY pair: three commits (the wrong try; the right VERIFY's try and its reset, which took {} in all).",
        human(reset_timer)
    ));
    match &scale.vscard {
        Some(vscard) => {
            let url = cluster.url();
            let hosts = Hosts {
                vscard,
                url: &url,
                database: &database,
            };
            scale_rows(&mut section, &hosts, &mut bare, scale, budget)?;
        }
        None => {
            eprintln!(
                "vscard-bench: skipping the card host's scale rows: build vscard beside \
                 vscard-bench (cargo build --release -p vscard)"
            );
            section.notes.push(
                "Scale rows (many cards, sessions on one and two hosts) skipped: `vscard` was not \
                 built beside `vscard-bench`."
                    .to_owned(),
            );
        }
    }
    Ok(Some(section))
}

/// What starting hosts and enrolling devices needs.
struct Hosts<'a> {
    vscard: &'a std::path::Path,
    url: &'a str,
    database: &'a Database,
}

impl Hosts<'_> {
    fn start(&self) -> Result<HostProcess, BenchError> {
        HostProcess::start(self.vscard, self.url)
    }

    /// A fresh device key enrolled (as a relay) for `card`.
    fn enrol(&self, card: &str) -> Result<Device, BenchError> {
        let identity = Identity::generate().map_err(host)?;
        self.database
            .add_device(card, identity.public(), DeviceRole::Relay)
            .map_err(host)?;
        Ok(Device {
            card: card.to_owned(),
            identity,
        })
    }
}

/// The ID of the `n`th cloned card.
fn card_id(n: usize) -> String {
    format!("card-{n:05}")
}

/// Clones card `bench` (its row, a free lease, its parts) as
/// `card-00001` to `card-{count}` in one transaction.
fn fill(bare: &mut postgres::Client, count: usize) -> Result<Duration, BenchError> {
    let count = i32::try_from(count).map_err(|_| host("too many cards"))?;
    let started = Instant::now();
    let mut tx = bare.transaction().map_err(host)?;
    for sql in [
        "INSERT INTO cards (id, approval) SELECT 'card-' || lpad(n::text, 5, '0'), c.approval \
         FROM cards c, generate_series(1, $1) n WHERE c.id = 'bench'",
        "INSERT INTO leases (card_id, holder, expires_at, fence) \
         SELECT 'card-' || lpad(n::text, 5, '0'), NULL, '-infinity', 0 FROM generate_series(1, $1) n",
        "INSERT INTO card_parts (card_id, applet, part, encoding, value) \
         SELECT 'card-' || lpad(n::text, 5, '0'), p.applet, p.part, p.encoding, p.value \
         FROM card_parts p, generate_series(1, $1) n WHERE p.card_id = 'bench'",
    ] {
        tx.execute(sql, &[&count]).map_err(host)?;
    }
    tx.commit().map_err(host)?;
    Ok(started.elapsed())
}

/// Waits (up to 10 s) until no card is leased: every closed session's
/// host has released its card.
fn wait_released(bare: &mut postgres::Client) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live: i64 = bare
            .query_one(
                "SELECT count(*) FROM leases WHERE expires_at > clock_timestamp()",
                &[],
            )
            .map_err(host)?
            .get(0);
        if live == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(host(format!(
                "{live} leases still held 10 s after their sessions closed"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One session on `device`'s card through `at`, opened and closed, then
/// the host's resident memory once the card is released.
fn resident_after_one_session(
    client: &Client,
    at: &HostProcess,
    device: &Device,
    bare: &mut postgres::Client,
) -> Result<u64, BenchError> {
    let (sessions, _) = client.open(&[(at.address(), device)], &SELECT_PIV, 0x9000)?;
    client.close(sessions);
    wait_released(bare)?;
    at.resident()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The scale rows and their notes.
fn scale_rows(
    section: &mut Section,
    hosts: &Hosts<'_>,
    bare: &mut postgres::Client,
    scale: &HostScale,
    budget: Duration,
) -> Result<(), BenchError> {
    let sessions = scale.sessions.max(2);
    let cards = scale.cards.max(2 * sessions + 2);
    let identity = vscard_host::serve::host_identity(hosts.database).map_err(host)?;
    let client = Client::new(*identity.public())?;
    let host_a = hosts.start()?;
    let (baseline, filled) = idle_cards(section, hosts, &client, &host_a, bare, cards)?;

    // Memory per open session: the same host, 0 then `sessions` open.
    let devices = (1..=2 * sessions)
        .map(|n| hosts.enrol(&card_id(n)))
        .collect::<Result<Vec<_>, _>>()?;
    let (alone, spread) = devices.split_at(sessions);
    let on_a: Vec<(&str, &Device)> = alone.iter().map(|d| (host_a.address(), d)).collect();
    // In two halves: the second half's share is the cost of one more
    // session once the host's pool of database connections has grown.
    let (half, rest) = on_a.split_at(sessions / 2);
    let (mut one_host, first_half) = client.open(half, &SELECT_PIV, 0x9000)?;
    let at_half = host_a.resident()?;
    let (second, second_half) = client.open(rest, &SELECT_PIV, 0x9000)?;
    one_host.extend(second);
    let opening = first_half + second_half;
    let full = host_a.resident()?;
    let per_session = full.saturating_sub(baseline) as f64 / sessions as f64;
    let marginal = full.saturating_sub(at_half) as f64 / rest.len() as f64;
    section.rows.push(Row::new(
        format!("memory per open session on a host process (VmRSS, 0 -> {sessions} sessions)"),
        format!("{:.1} KiB", per_session / 1024.0),
        "budget 64 KiB".to_owned(),
        ratio(per_session, SESSION_BUDGET as f64),
        Goal::AtMost(1.0),
    ));
    section.notes.push(format!(
        "Scale rows: real `vscard host` processes on the same database, {cards} cards (cloned in SQL \
         from the first in {}), a device enrolled for each card used. RSS rows: the host's VmRSS, \
         each after a session was opened and closed; {sessions} sessions opened ({} at a time) in {} \
         and each sent one SELECT before the RSS was read. The second half of the sessions cost \
         {:.1} KiB each (the first half also grew the host's pool of database connections, up to \
         16).",
        human(filled),
        OPENING_AT_ONCE,
        human(opening),
        marginal / 1024.0,
    ));

    // `sessions` other cards, half on A and half on B.
    let host_b = hosts.start()?;
    let on_both: Vec<(&str, &Device)> = spread
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let at = if i % 2 == 0 { &host_a } else { &host_b };
            (at.address(), d)
        })
        .collect();
    let (two_hosts, _) = client.open(&on_both, &SELECT_PIV, 0x9000)?;
    let sets = [Phase::new(one_host), Phase::new(two_hosts)];
    throughput(section, &client, [&host_a, &host_b], sets, sessions, budget)
}

/// The host's memory with one card in the database, then with `cards`
/// (each after one session opened and closed, so both include what a
/// first session sets up); returns the second, the host's memory with
/// no session open, and how long the cloning took.
fn idle_cards(
    section: &mut Section,
    hosts: &Hosts<'_>,
    client: &Client,
    at: &HostProcess,
    bare: &mut postgres::Client,
    cards: usize,
) -> Result<(u64, Duration), BenchError> {
    let first = hosts.enrol("bench")?;
    let one_card = resident_after_one_session(client, at, &first, bare)?;
    let filled = fill(bare, cards - 1)?;
    let last = hosts.enrol(&card_id(cards - 1))?;
    let many_cards = resident_after_one_session(client, at, &last, bare)?;
    section.rows.push(Row::new(
        format!("host process RSS with {cards} cards in the database"),
        mib(many_cards),
        format!("with 1 card: {}", mib(one_card)),
        ratio(many_cards as f64, one_card as f64),
        Goal::AtMost(1.05),
    ));
    Ok((many_cards, filled))
}

/// APDUs per second of set 0 (all on host A) against set 1 (half on A,
/// half on B), driven in alternating slices; then closes both.
fn throughput(
    section: &mut Section,
    client: &Client,
    hosts: [&HostProcess; 2],
    mut sets: [Phase; 2],
    sessions: usize,
    budget: Duration,
) -> Result<(), BenchError> {
    // Slices of at most 5 s: an idle set stays well within the link's
    // keep-alive timeout.
    let slices = ((budget.as_secs_f64() / 5.0).ceil() as u32).max(2);
    let slice = budget / slices;
    for round in 0..slices as usize {
        for which in [round % 2, 1 - round % 2] {
            sets[which].drive(client, slice, &hosts[..=which])?;
        }
    }
    let [one, two] = sets;
    section.rows.push(Row::new(
        format!("SELECT PIV, {sessions} sessions spread over 2 host processes"),
        rate(two.per_second()),
        format!("all {sessions} on 1 host: {}", rate(one.per_second())),
        ratio(two.per_second(), one.per_second()),
        Goal::AtLeast(1.5),
    ));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    section.notes.push(format!(
        "Throughput: one APDU in flight per session, from one client thread (the relay's side), \
         the two sets in alternating slices of {}. CPU used during the rounds, in cores: one host \
         {:.2} (its session threads {:.2}), client {:.2}; two hosts {:.2} together (session threads \
         {:.2}), client {:.2}. The {cores} cores are shared by the client, the hosts, PostgreSQL and \
         whatever else runs (load average {} after the rounds): a second host adds throughput only \
         with cores the first leaves idle.",
        human(slice),
        one.host_cores(),
        one.session_cores(),
        one.client_cores(),
        two.host_cores(),
        two.session_cores(),
        two.client_cores(),
        crate::machine::load(),
    ));
    client.close(one.sessions);
    client.close(two.sessions);
    Ok(())
}

/// One set of sessions and what driving it measured.
struct Phase {
    sessions: Vec<Session>,
    answered: u64,
    elapsed: Duration,
    host_cpu: Duration,
    session_cpu: Duration,
    client_cpu: Duration,
}

impl Phase {
    fn new(sessions: Vec<Session>) -> Phase {
        Phase {
            sessions,
            answered: 0,
            elapsed: Duration::ZERO,
            host_cpu: Duration::ZERO,
            session_cpu: Duration::ZERO,
            client_cpu: Duration::ZERO,
        }
    }

    /// Drives the set for `slice`, adding the CPU time `hosts` and this
    /// process used.
    fn drive(
        &mut self,
        client: &Client,
        slice: Duration,
        hosts: &[&HostProcess],
    ) -> Result<(), BenchError> {
        let cpu = |hosts: &[&HostProcess]| -> Result<[Duration; 3], BenchError> {
            let (mut total, mut sessions) = (Duration::ZERO, Duration::ZERO);
            for at in hosts {
                total += at.cpu_time()?;
                sessions += at.session_threads_cpu()?;
            }
            Ok([total, sessions, cpu_time("/proc/self/stat")?])
        };
        let before = cpu(hosts)?;
        let sessions = std::mem::take(&mut self.sessions);
        let (sessions, answered, elapsed) = client.drive(sessions, &SELECT_PIV, 0x9000, slice)?;
        let after = cpu(hosts)?;
        self.sessions = sessions;
        self.answered += answered;
        self.elapsed += elapsed;
        self.host_cpu += after[0].saturating_sub(before[0]);
        self.session_cpu += after[1].saturating_sub(before[1]);
        self.client_cpu += after[2].saturating_sub(before[2]);
        Ok(())
    }

    fn per_second(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn host_cores(&self) -> f64 {
        ratio(self.host_cpu.as_secs_f64(), self.elapsed.as_secs_f64())
    }

    fn session_cores(&self) -> f64 {
        ratio(self.session_cpu.as_secs_f64(), self.elapsed.as_secs_f64())
    }

    fn client_cores(&self) -> f64 {
        ratio(self.client_cpu.as_secs_f64(), self.elapsed.as_secs_f64())
    }
}

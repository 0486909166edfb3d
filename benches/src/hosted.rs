//! The card host's costs on a PostgreSQL cluster of the run's own
//! (`vscard_testkit::postgres`): a committed PIN try through
//! [`PostgresStore`] against a bare single-row `UPDATE` (autocommit, so
//! one round trip and one durable commit) on the same server, and a
//! session open (lease + load + the card built on the store).
//!
//! Between two timed wrong VERIFYs an untimed right one resets the
//! counter. Both sides run in turn ([`measure::run_pair`]) so a drifting
//! machine hits them alike.

use std::time::{Duration, Instant};

use vscard_emulator::CardImage;
use vscard_host::{CardOptions, Database, PostgresStore, holder_name};
use vscard_testkit::postgres::PrivatePostgres;

use crate::apdu::{self, DEMO_PIN};
use crate::measure::{self, human, ratio};
use crate::report::{Goal, Row, Section};
use crate::{BenchError, fixture};

fn host(error: impl std::fmt::Display) -> BenchError {
    BenchError::Host(error.to_string())
}

/// The card-host table; `None` when PostgreSQL is not installed.
pub fn run(image: &CardImage, budget: Duration) -> Result<Option<Section>, BenchError> {
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
        "9. The card host (PostgreSQL)",
        "vscard / bare single-row UPDATE + COMMIT (medians)",
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
    // `ours` timed the wrong try and its untimed reset together: take the
    // resets' share out (they cost one commit each too).
    let ours_try = ours.median / 2;
    section.rows.push(Row::new(
        "wrong VERIFY through `PostgresStore` (lease check + part upsert, one statement)",
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
        "A wrong VERIFY's row halves a timed wrong + right pair (each commits once; resets took {} in all). \
         Not measured yet: 10,000 cards with 100 sessions across two hosts, memory per open session.",
        human(reset_timer)
    ));
    Ok(Some(section))
}

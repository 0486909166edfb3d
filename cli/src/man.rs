//! `vscard man --out DIR`: the manual pages, rendered by clap_mangen from
//! the same clap definitions that parse the command line, so they cannot
//! drift from it. The Debian package ships the committed copies in
//! `cli/man/` (a test checks they are current).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory as _;
use vscard_emulator::files;
use vscard_issuance::cards::CardFileError;

use crate::args::{Cli, ManArgs};

/// The pages' section: user commands (man-pages(7)).
const SECTION: &str = "1";

/// Writes `vscard.1` and one `vscard-COMMAND.1` per visible subcommand
/// (`vscard-pki-init.1` for nested ones) into `args.out`, which must be
/// an existing folder; prints each path.
pub fn write_pages(args: &ManArgs) -> anyhow::Result<()> {
    if !args.out.is_dir() {
        return Err(CardFileError::BadValue {
            option: "--out",
            reason: format!("{} is not an existing folder", args.out.display()),
        }
        .into());
    }
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    for (name, page) in pages(&command)? {
        let path: PathBuf = args.out.join(format!("{name}.{SECTION}"));
        // Documentation, not a secret: readable by all, as installed.
        files::write_atomically(&path, &page, 0o644)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Every visible command's page, the top-level one first, by file stem.
fn pages(command: &clap::Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .section(SECTION)
        .manual("vscard manual")
        .render(&mut page)
        .context("cannot render a manual page")?;
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    out.push((name, page));
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        out.extend(pages(sub)?);
    }
    Ok(out)
}

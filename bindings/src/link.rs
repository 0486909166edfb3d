//! The link from the app: the card served to a `vscard relay`.

use std::sync::Arc;

use vscard_link::{CardLinkConfig, CardLinkHandle, CardObserver, LinkState, PinnedRelay, Target};

use crate::VscardError;
use crate::card::{Card, Place};

/// Hears what the card's link does (called on the link's own thread).
#[uniffi::export(with_foreign)]
pub trait LinkObserver: Send + Sync {
    /// The link is up: the relay put the card into its reader.
    fn connected(&self, relay: String);
    /// The link ended (the card left the reader); it reconnects by itself.
    fn disconnected(&self, reason: String);
    /// This connection paired with the relay (pinned from now on).
    fn paired(&self, relay: String);
}

/// The app's observer as the link crate's.
struct Observer(Arc<dyn LinkObserver>);

impl CardObserver for Observer {
    fn connected(&self, relay: &str) {
        self.0.connected(relay.to_owned());
    }
    fn paired(&self, relay: &PinnedRelay) {
        self.0.paired(relay.address.clone());
    }
    fn disconnected(&self, reason: &str) {
        self.0.disconnected(reason.to_owned());
    }
}

fn link_error(error: vscard_link::LinkError) -> VscardError {
    match error {
        vscard_link::LinkError::BadUri(_) => VscardError::Argument {
            message: error.to_string(),
        },
        other => VscardError::Link {
            message: other.to_string(),
        },
    }
}

#[uniffi::export]
impl Card {
    /// Serves the card over the link to a `vscard relay`, on a thread of
    /// its own (with its own tokio runtime), until `stop_link`. `target`
    /// is the relay's pairing URI (`vscard relay pair` shows it) the first
    /// time, then the relay's address (`host:port`) once paired. The
    /// card's link identity and the pinned relays are kept in `state_dir`
    /// (mode 0600 files). While served, the card's other methods raise
    /// `Card`; commits keep going to its store.
    #[uniffi::method(default(label = "card", observer = None))]
    pub fn serve_link(
        &self,
        target: String,
        state_dir: String,
        label: String,
        observer: Option<Arc<dyn LinkObserver>>,
    ) -> Result<(), VscardError> {
        let state = LinkState::new(std::path::Path::new(&state_dir));
        let target = Target::resolve(&target, &state).map_err(link_error)?;
        let config = CardLinkConfig {
            label,
            observer: observer.map(|o| Arc::new(Observer(o)) as Arc<dyn CardObserver>),
            ..CardLinkConfig::default()
        };
        let card = self.take_for_link()?;
        // The card goes into the link thread; on a failure to start, it
        // is lost with it (spawn takes it by value), so report plainly.
        let handle = CardLinkHandle::spawn(card, target, state, config).map_err(link_error)?;
        *self.place() = Place::Linked(handle);
        Ok(())
    }

    /// True while the card is served over the link and the link has not
    /// ended by itself (a refusal by the relay).
    pub fn is_linked(&self) -> bool {
        match &*self.place() {
            Place::Linked(handle) => !handle.is_finished(),
            _ => false,
        }
    }

    /// Stops serving over the link and takes the card back; raises `Link`
    /// when serving had ended with an error (the card is back all the same).
    pub fn stop_link(&self) -> Result<(), VscardError> {
        let mut place = self.place();
        let Place::Linked(_) = &*place else {
            return Err(VscardError::Card {
                message: "the card is not served over the link".to_owned(),
            });
        };
        let Place::Linked(handle) = std::mem::replace(&mut *place, Place::Lost) else {
            return Ok(());
        };
        let (card, result) = handle.stop();
        if let Some(card) = card {
            *place = Place::Here(Box::new(card));
        }
        result.map_err(link_error)
    }
}

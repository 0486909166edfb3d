//! [`CardBuilder`]: the settings of a new [`Card`] and the loading of its
//! applets' state from the store.

use super::{Card, CardError, PowerState, Slot};
use crate::channel::{ChannelTable, MAX_CHANNELS};
use crate::environment::{CardRng, Clock, SystemClock};
use crate::memory_store::MemoryStore;
use crate::services::Env;
use crate::store::{CardImage, Store};
use crate::{Aid, Applet, Atr};

/// Builds a [`Card`].
pub struct CardBuilder {
    atr: Atr,
    store: Box<dyn Store>,
    rng: Option<CardRng>,
    clock: Box<dyn Clock>,
    channels: u8,
    max_command_data: usize,
    applets: Vec<Box<dyn Applet>>,
    default_applet: Option<Aid>,
    record: bool,
    catch_panics: bool,
}

impl Card {
    /// A builder with the defaults: default ATR (T=1), an in-memory store,
    /// the OS random generator, the system clock, 20 logical channels, and
    /// commands of up to 65535 data bytes.
    pub fn builder() -> CardBuilder {
        CardBuilder {
            atr: Atr::default(),
            store: Box::new(MemoryStore::new()),
            rng: None,
            clock: Box::new(SystemClock),
            channels: MAX_CHANNELS,
            max_command_data: 65535,
            applets: Vec::new(),
            default_applet: None,
            record: false,
            catch_panics: true,
        }
    }
}

impl CardBuilder {
    /// The ATR.
    pub fn atr(mut self, atr: Atr) -> Self {
        self.atr = atr;
        self
    }

    /// The store (default: a fresh [`MemoryStore`]).
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Box::new(store);
        self
    }

    /// The random generator (default: keyed from the OS).
    pub fn rng(mut self, rng: CardRng) -> Self {
        self.rng = Some(rng);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// How many logical channels, the basic one included (1..=20).
    pub fn logical_channels(mut self, count: u8) -> Self {
        self.channels = count.clamp(1, MAX_CHANNELS);
        self
    }

    /// The largest command data field accepted, after chaining or in one
    /// extended APDU (at least 4096).
    pub fn max_command_data(mut self, bytes: usize) -> Self {
        self.max_command_data = bytes.max(4096);
        self
    }

    /// Installs an applet.
    pub fn install(mut self, applet: impl Applet + 'static) -> Self {
        self.applets.push(Box::new(applet));
        self
    }

    /// Installs an applet and makes it the default applet, selected
    /// implicitly on the basic channel after power-on and reset.
    pub fn install_default(mut self, applet: impl Applet + 'static) -> Self {
        self.default_applet = Some(applet.aid());
        self.applets.push(Box::new(applet));
        self
    }

    /// Keeps a decoded record of each exchange (see [`Card::last_exchange`]).
    pub fn record_exchanges(mut self, on: bool) -> Self {
        self.record = on;
        self
    }

    /// Whether a panic inside an applet is caught and answered `6F00` (the
    /// default, `true`) or propagates to the caller of [`Card::transmit`].
    /// Tests that assert "every answer ends in a status word" turn it off,
    /// so that an applet panic fails them instead of hiding behind `6F00`.
    /// Builds with `panic = "abort"` (phone apps) abort on a panic whatever
    /// this says: there is nothing to catch.
    pub fn catch_panics(mut self, on: bool) -> Self {
        self.catch_panics = on;
        self
    }

    /// Starts the card from `image` (a [`Card::image`] snapshot of another
    /// card, say) in a fresh [`MemoryStore`]: the new card commits to its
    /// own store and shares nothing with the card the image came from.
    pub fn image(mut self, image: CardImage) -> Self {
        self.store = Box::new(MemoryStore::with_image(image));
        self
    }

    /// Loads the image from the store, hands each applet its state (an
    /// applet new to the image commits its initial state), and returns the
    /// card, powered off.
    pub fn build(self) -> Result<Card, CardError> {
        let CardBuilder {
            atr,
            mut store,
            rng,
            clock,
            channels,
            max_command_data,
            applets,
            default_applet,
            record,
            catch_panics,
        } = self;
        let rng = match rng {
            Some(rng) => rng,
            None => CardRng::from_os().map_err(CardError::Rng)?,
        };
        let mut image = store.load()?.unwrap_or_default();
        let (slots, fresh) = load_applets(applets, &mut image)?;
        if fresh {
            store.commit(&image)?;
        }
        let default_applet = match default_applet {
            None => None,
            Some(aid) => Some(
                slots
                    .iter()
                    .position(|s| s.aid == aid)
                    .ok_or(CardError::UnknownDefaultApplet(aid))?,
            ),
        };
        Ok(Card {
            atr,
            slots,
            default_applet,
            channels: ChannelTable::new(channels),
            env: Env::new(store, image, rng, clock),
            power: PowerState::Off,
            max_command_data,
            catch_panics,
            record,
            last: None,
            transcript: None,
        })
    }
}

/// Hands each applet its state from `image`; an applet new to the image
/// adds its initial state unless it has none (the second value says
/// whether any did).
fn load_applets(
    applets: Vec<Box<dyn Applet>>,
    image: &mut CardImage,
) -> Result<(Vec<Slot>, bool), CardError> {
    let mut slots: Vec<Slot> = Vec::with_capacity(applets.len());
    let mut fresh = false;
    for mut applet in applets {
        let aid = applet.aid();
        if slots.iter().any(|s| s.aid == aid) {
            return Err(CardError::DuplicateAid(aid));
        }
        let key = aid.to_hex();
        let state_error = |source| CardError::State { aid, source };
        match image.applet(&key) {
            Some(state) => applet.load(state).map_err(state_error)?,
            None => {
                // A stateless applet leaves the image as it is: installing
                // one on an existing card does not rewrite its file.
                let state = applet.save().map_err(state_error)?;
                if !state.is_empty() {
                    image.set_applet(&key, state);
                    fresh = true;
                }
            }
        }
        slots.push(Slot { applet, aid, key });
    }
    Ok((slots, fresh))
}

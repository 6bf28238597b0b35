//! A virtual CPS3 card (IAS-ECC, contact) on the real PC/SC stack, for every test that needs a
//! health professional's smart card.
//!
//! Owns: the card's behaviour as public documents describe it ([`card`]: SELECT by AID / FID /
//! path, READ BINARY, VERIFY with 3 tries, RESET RETRY COUNTER with the unblocking code, MSE
//! SET + INTERNAL AUTHENTICATE and PSO COMPUTE DIGITAL SIGNATURE with RSA-2048 PKCS#1 v1.5), its
//! files ([`profile`]: EF.DIR, EF.ATR, the IAS application and its PKCS#15 objects, so that
//! OpenSC reads it), its link to vsmartcard's vpcd reader driver ([`vpcd`]), the test harness
//! that starts a private pcscd ([`harness`]) and test identities ([`identity`]).
//!
//! Must not depend on: any crate of this workspace. It is a test tool; the provider and the
//! card agent reach it only through PC/SC, as they would a real card.

pub mod apdu;
pub mod card;
pub mod harness;
pub mod identity;
pub mod profile;
pub mod tlv;
pub mod vpcd;

pub use card::{Card, CardStatus};
pub use harness::{HarnessError, Pcscd, SOCKET_ENV, workspace_binary};
pub use identity::TestIdentity;
pub use profile::{CardProfile, ProfileError};
pub use vpcd::{CardError, VirtualCard};

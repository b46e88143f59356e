//! Wire types: what clients send and receive. Kept apart from the domain's read models and
//! converted with plain functions, so the wire format is chosen here and nowhere else. One file
//! per area; everything is re-exported here, so callers name `dto::X` whatever its file.

mod apps;
mod compat;
mod error;
mod identities;
mod meetups;
mod names;
mod polls;
mod requests;
mod rooms;
mod search;
mod timeline;

pub use apps::*;
pub use compat::*;
pub use error::*;
pub use identities::*;
pub use meetups::*;
pub use names::*;
pub use polls::*;
pub use requests::*;
pub use rooms::*;
pub use search::*;
pub use timeline::*;

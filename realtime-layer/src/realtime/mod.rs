//! The public facade: [`Realtime`] (a cloneable handle on one instance) and [`RealtimeBuilder`].
//!
//! The only place with `impl Realtime`, and the top of the layering: nothing in the crate imports
//! this module (see `docs/ARCHITECTURE.md`). No global state.

mod builder;
mod handle;

pub use builder::RealtimeBuilder;
pub use handle::Realtime;

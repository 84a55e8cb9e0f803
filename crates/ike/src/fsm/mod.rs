//! The sans-IO IKEv2 state machines (RFC 7296): an [`Endpoint`] owning every IKE SA of
//! the gateway, and the per-SA machine behind it.
//!
//! ```text
//!  config ──add_connection / initiate / terminate──┐
//!  UDP 500/4500 ──handle_datagram(now, ..)─────────┤
//!  clock ──handle_timeout(now)─────────────────────┼──> Endpoint ──> IkeSa (by our SPI)
//!  esp crate ──handle_child_event(now, spi, ..)────┘        │            └─> Child SAs
//!                                                           ├─ poll_transmit ──> UDP
//!                                                           ├─ poll_event ────> SAD, routes
//!                                                           └─ poll_timeout ──> timer
//! ```
//!
//! Module map: [`config`] (what the daemon passes in), [`event`] (what comes out),
//! `endpoint` (demultiplexing, IKE_SA_INIT responder with cookies and half-open limits),
//! `ike_sa` (exchanges, message IDs, retransmission, DPD, rekeying, deletion), `narrow`
//! (traffic selector narrowing, §2.9), `table` (the SAs by SPI, with the deadline and
//! child-SPI indexes), `timer` (the per-SA `TimerTable`).

pub mod config;
mod ctx;
mod endpoint;
pub mod event;
mod ike_sa;
mod narrow;
mod table;
mod timer;

pub use config::{
    ConnectionConfig, DpdAction, EndpointConfig, RetransmitConfig, TrafficSelectorPolicy,
};
pub use endpoint::Endpoint;
pub use event::{
    ChildInfo, ChildSa, ChildSaSignal, ConnId, DownReason, Event, SaInfo, SaState, Stats, Transmit,
};

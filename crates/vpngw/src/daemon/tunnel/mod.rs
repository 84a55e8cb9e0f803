//! The tunnel engine: drives the sans-IO `ike::Endpoint` and the `esp` SAs with the daemon's
//! real sockets and TUN device.
//!
//! ```text
//!   UDP 500  ─────────────────────────────► ike.handle_datagram ─┐
//!   UDP 4500 ─► esp::SadIn::handle_datagram ┬ Ike{range} ────────┘   ike.poll_transmit ─► UDP
//!                                           ├ Ipv4/Ipv6{range} ─► health reply? ─► TUN write
//!                                           └ keepalive, errors (counted)
//!   TUN read ─► rib lookup (inner dst) ─► Connection(name) ─► MSS clamp (`inner`)
//!            ─► OutboundSa::seal ─► UDP 4500
//!   timer ─► ike.handle_timeout, health probes (`health`, sealed straight into the child SA)
//!   ike.poll_event ─► install / remove child SAs; kernel routes (`kernel`, rtnetlink)
//!   commands ─► admin up/down, reload (`Reconfigure`), BGP-learned prefixes (`SetLearned`)
//! ```
//!
//! One loop owns all of it, alone on a thread of its own, waiting in an epoll set of its own
//! (`reactor`) rather than in an async runtime, so no lock and no scheduler sits on the packet
//! path; the rest of the daemon reaches the engine through [`Commands`] (a queue and an
//! eventfd) and sees it through [`EngineEvent`]s and a shared status snapshot. The arrows
//! carry batches (`datapath`): TSO super-packets from the TUN device, UDP GSO sends, recvmmsg
//! of UDP GRO batches, GRO-coalesced TUN writes; a busy source is drained (a bounded batch
//! per pass), a lone packet costs one read. "UDP 4500" is the address's shared socket or,
//! beside it, one connected to the peer (`Engine::sync_connected`, at most 64 per address),
//! which spares the kernel a route lookup each way.
//! Beside the engine, `mtu` checks at start and reload that a full TUN-MTU packet still fits
//! the kernel's path to each peer once encrypted (the outer packets carry DF).

mod datapath;
mod engine;
mod health;
mod inner;
mod kernel;
pub(crate) mod mtu;
mod reactor;

pub(crate) use engine::{Engine, EngineCommand, EngineEvent, Reconfigure};
#[cfg(test)]
pub(crate) use reactor::Inbox;
pub(crate) use reactor::{commands, Commands};

use super::{gateway::Gateway, model::TunnelState};

/// A health check's verdict, with the fabric told of revoked publications. Blocking.
pub(crate) fn apply_health(gw: &Gateway, ev: &EngineEvent) {
    match ev {
        EngineEvent::HealthFailed { conn, revoked } => gw.set_health(conn, false, *revoked),
        EngineEvent::HealthRecovered { conn } => gw.set_health(conn, true, false),
        _ => {}
    }
}

/// Reflects an engine event in the state the API shows.
pub(crate) fn apply_to(gw: &Gateway, ev: &EngineEvent) {
    match ev {
        EngineEvent::IkeUp { conn, .. } => {
            gw.set_state(conn, TunnelState::Connecting);
        }
        EngineEvent::ChildUp { conn, .. } => {
            gw.set_state(conn, TunnelState::Up);
        }
        EngineEvent::ChildDown { conn, reason, .. } if *reason != ike::DownReason::Rekeyed => {
            gw.set_state(conn, TunnelState::Down);
        }
        EngineEvent::ChildDown { conn, .. } => gw.count(conn, true),
        EngineEvent::IkeDown { conn, reason } => {
            if *reason == ike::DownReason::PeerDead {
                gw.count(conn, false);
            }
            gw.set_state(conn, TunnelState::Down);
        }
        EngineEvent::HealthFailed { .. } | EngineEvent::HealthRecovered { .. } => {
            // Handled by `apply_health`, which may block on the fabric.
        }
        EngineEvent::Snapshot(s) => gw.set_snapshot(s.clone()),
    }
}

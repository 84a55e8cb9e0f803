//! The daemon's kernel routes: prefixes through the TUN device, and host routes that keep each
//! peer's own address out of the tunnels.
//!
//! A prefix routed into a tunnel may contain a peer's outer address (the seed's on-premises
//! gateway routes the whole VPC, the VPN gateway's private address included, into the
//! tunnel). Before such a prefix goes in, the peer's address is pinned with a host route over
//! the way the kernel reaches it at that moment, as strongSwan's kernel-libipsec does, so the
//! tunnel's own ESP and IKE packets never loop into it. Every route carries `proto 87` and the
//! configured metric, below the routes that should take over when the daemon removes its own.
//!
//! The routes are rtnetlink requests on one blocking netlink socket: RTM_NEWROUTE
//! (create|replace) and RTM_DELROUTE, each waiting for the kernel's acknowledgement, and
//! RTM_GETROUTE for a pin's lookup (the gateway and device the kernel uses for the peer now).
//! The engine changes routes from synchronous code inside its one loop; the kernel handles an
//! rtnetlink request and queues its answer before `send` returns, so a request costs
//! microseconds there, where spawning `ip` for each route cost milliseconds. The messages are
//! the ones `ip route replace|del|get` sends, so `ip route` shows and removes the routes as it
//! did before.

use std::{collections::BTreeMap, fmt, io, net::IpAddr, time::Duration};

use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::{
    link::{LinkAttribute, LinkMessage},
    route::{
        RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteMetric,
        RouteProtocol, RouteScope, RouteType, RouteVia,
    },
    AddressFamily, RouteNetlinkMessage,
};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

/// Marks the daemon's kernel routes (the lab uses 86).
pub(crate) const PROTO: u8 = 87;

/// The routes this daemon has in the kernel.
#[derive(Debug)]
pub(crate) struct KernelRoutes {
    tun: String,
    metric: u32,
    /// Every peer's outer address.
    peers: Vec<IpAddr>,
    /// Prefixes through the TUN device, with how many connections route them (a standby and
    /// an active route share one kernel route).
    prefixes: BTreeMap<IpNet, usize>,
    /// Pinned peers, with the next hop of their host route.
    pins: BTreeMap<IpAddr, NextHop>,
    /// The netlink socket and the TUN device's interface index, made on first use: a failure
    /// there (no device yet) is logged with the route and tried again with the next one.
    link: Option<(Rtnl, u32)>,
}

impl KernelRoutes {
    pub(crate) fn new(tun: &str, metric: u32, peers: Vec<IpAddr>) -> Self {
        Self {
            tun: tun.to_owned(),
            metric,
            peers,
            prefixes: BTreeMap::new(),
            pins: BTreeMap::new(),
            link: None,
        }
    }

    /// The peers' addresses after a reload; pins already made stay until unneeded.
    pub(crate) fn set_peers(&mut self, peers: Vec<IpAddr>) {
        self.peers = peers;
    }

    /// Routes `prefixes` through the TUN device, pinning any peer they contain first.
    /// Failures are logged: a route the kernel refuses must not stop the tunnel.
    pub(crate) fn add(&mut self, prefixes: &[IpNet]) {
        for p in prefixes {
            let count = self.prefixes.entry(*p).or_insert(0);
            *count += 1;
            if *count > 1 {
                continue;
            }
            for peer in self.peers.clone() {
                if p.contains(&peer) && !self.pins.contains_key(&peer) {
                    match self.pin(peer) {
                        Ok(hop) => {
                            self.pins.insert(peer, hop);
                        }
                        Err(e) => tracing::warn!(%peer, "pinning the peer's host route: {e:#}"),
                    }
                }
            }
            if let Err(e) = self.tun_route(*p, Change::Replace) {
                tracing::warn!("{e:#}");
            }
        }
    }

    /// Takes `prefixes` out of the kernel (once no connection routes them), then the pins no
    /// remaining prefix needs.
    pub(crate) fn remove(&mut self, prefixes: &[IpNet]) {
        for p in prefixes {
            let Some(count) = self.prefixes.get_mut(p) else {
                continue;
            };
            *count -= 1;
            if *count > 0 {
                continue;
            }
            self.prefixes.remove(p);
            if let Err(e) = self.tun_route(*p, Change::Delete) {
                tracing::warn!("{e:#}");
            }
        }
        let unneeded: Vec<IpAddr> = self
            .pins
            .keys()
            .filter(|peer| !self.prefixes.keys().any(|p| p.contains(*peer)))
            .copied()
            .collect();
        for peer in unneeded {
            if let Some(hop) = self.pins.remove(&peer) {
                let metric = self.metric;
                let done = self
                    .kernel()
                    .and_then(|(rtnl, _)| change(rtnl, Change::Delete, peer.into(), &hop, metric));
                if let Err(e) = done {
                    tracing::warn!("{e:#}");
                }
            }
        }
    }

    /// The netlink socket and the TUN device's index, resolved once.
    fn kernel(&mut self) -> Result<(&mut Rtnl, u32)> {
        let link = match self.link.take() {
            Some(link) => link,
            None => {
                let mut rtnl = Rtnl::open().context("opening a netlink (rtnetlink) socket")?;
                let index = rtnl.link_index(&self.tun)?;
                (rtnl, index)
            }
        };
        let (rtnl, index) = self.link.insert(link);
        Ok((rtnl, *index))
    }

    /// Adds or removes `dst` through the TUN device.
    fn tun_route(&mut self, dst: IpNet, how: Change) -> Result<()> {
        let (metric, dev) = (self.metric, self.tun.clone());
        let (rtnl, oif) = self.kernel().with_context(|| {
            format!(
                "{} route {dst} dev {dev} proto {PROTO} metric {metric}",
                how.verb()
            )
        })?;
        let hop = NextHop {
            gateway: None,
            oif,
            dev,
        };
        change(rtnl, how, dst, &hop, metric)
    }

    /// Pins a host route to `peer` over the route the kernel uses for it now.
    fn pin(&mut self, peer: IpAddr) -> Result<NextHop> {
        let (metric, tun) = (self.metric, self.tun.clone());
        let (rtnl, tun_index) = self.kernel()?;
        let (_, gateway, oif) = lookup(rtnl, peer)?;
        if oif == tun_index {
            bail!("{peer} is already routed into {tun}; nothing to pin it to");
        }
        // The name is for people only (logs, errors): the route itself is made by index.
        let dev = rtnl
            .link_name(oif)
            .unwrap_or_else(|_| format!("(interface {oif})"));
        let hop = NextHop { gateway, oif, dev };
        change(rtnl, Change::Replace, peer.into(), &hop, metric)?;
        tracing::info!(%peer, route = %hop, "peer pinned outside its tunnel");
        Ok(hop)
    }
}

/// The kernel's route to `peer` now (as `ip route get`), with its gateway, if any, and
/// output interface.
fn lookup(rtnl: &mut Rtnl, peer: IpAddr) -> Result<(RouteMessage, Option<IpAddr>, u32)> {
    let answer = rtnl
        .request(RouteNetlinkMessage::GetRoute(lookup_message(peer)), 0)
        .map_err(|e| anyhow!("looking up the route to {peer}: {}", explain(&e)))?;
    let Some(RouteNetlinkMessage::NewRoute(answer)) = answer else {
        bail!("looking up the route to {peer}: the kernel answered without a route");
    };
    let Some((gateway, oif)) = next_hop_of(&answer) else {
        bail!("the kernel's route to {peer} names no device");
    };
    Ok((answer, gateway, oif))
}

/// The path the kernel takes toward a peer now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerPath {
    /// The largest packet it carries: the route's own MTU (`ip route … mtu N`, or a path
    /// MTU the kernel learned) when it has one, else its device's.
    pub(crate) mtu: usize,
    /// The device, for messages.
    pub(crate) dev: String,
}

/// Looks up the kernel's paths toward peers, on one rtnetlink socket for all of them.
#[derive(Debug)]
pub(crate) struct Paths(Rtnl);

impl Paths {
    pub(crate) fn open() -> Result<Self> {
        Ok(Self(Rtnl::open().context("opening an rtnetlink socket")?))
    }

    /// The path toward `peer` now (RTM_GETROUTE, then RTM_GETLINK for the device).
    pub(crate) fn to(&mut self, peer: IpAddr) -> Result<PeerPath> {
        let (answer, _, oif) = lookup(&mut self.0, peer)?;
        let route_mtu = answer.attributes.iter().find_map(|a| match a {
            RouteAttribute::Metrics(m) => m.iter().find_map(|m| match m {
                RouteMetric::Mtu(v) if *v > 0 => Some(*v),
                _ => None,
            }),
            _ => None,
        });
        let (dev, dev_mtu) = self.0.link(oif)?;
        Ok(PeerPath {
            mtu: route_mtu.unwrap_or(dev_mtu) as usize,
            dev,
        })
    }
}

/// Where a route sends packets: a device, through a gateway or directly.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NextHop {
    gateway: Option<IpAddr>,
    oif: u32,
    /// The device's name, for messages.
    dev: String,
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(gw) = self.gateway {
            write!(f, "via {gw} ")?;
        }
        write!(f, "dev {}", self.dev)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// RTM_NEWROUTE with create|replace, as `ip route replace`: a route left by an earlier
    /// run of the daemon is taken over rather than refused with EEXIST.
    Replace,
    Delete,
}

impl Change {
    fn verb(self) -> &'static str {
        match self {
            Self::Replace => "adding route",
            Self::Delete => "removing route",
        }
    }
}

/// Sends one route change and waits for the kernel's acknowledgement; a refusal names the
/// route as `ip route` would write it.
fn change(rtnl: &mut Rtnl, how: Change, dst: IpNet, hop: &NextHop, metric: u32) -> Result<()> {
    let (msg, flags) = match how {
        Change::Replace => (
            RouteNetlinkMessage::NewRoute(route_message(how, dst, hop, metric)),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        ),
        Change::Delete => (
            RouteNetlinkMessage::DelRoute(route_message(how, dst, hop, metric)),
            NLM_F_ACK,
        ),
    };
    rtnl.request(msg, flags).map(drop).map_err(|e| {
        anyhow!(
            "{} {dst} {hop} proto {PROTO} metric {metric}: {}",
            how.verb(),
            explain(&e)
        )
    })
}

/// The kernel's errno with what it means for a route.
fn explain(e: &io::Error) -> String {
    let hint = match e.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ESRCH) => "the kernel has no such route",
        Some(Errno::EEXIST) => "the route exists already",
        Some(Errno::ENETUNREACH) => "no route to that network or gateway",
        Some(Errno::EHOSTUNREACH) => "the host is unreachable",
        Some(Errno::ENODEV) => "no such device",
        Some(Errno::EPERM | Errno::EACCES) => "not permitted (needs CAP_NET_ADMIN)",
        Some(Errno::EINVAL) => "the kernel finds the route invalid",
        _ => return e.to_string(),
    };
    format!("{hint} ({e})")
}

fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The RTM_NEWROUTE or RTM_DELROUTE body for `dst` over `hop`, as `ip route replace|del DST
/// [via GW] dev DEV proto 87 metric M` builds it: the main table, a unicast route of link
/// scope without a gateway and of universe scope with one; a deletion leaves scope "nowhere"
/// and type unspecified, which the kernel reads as "any", and matches on protocol, device,
/// gateway and metric.
fn route_message(how: Change, dst: IpNet, hop: &NextHop, metric: u32) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(dst.addr());
    m.header.destination_prefix_length = dst.prefix_len();
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::from(PROTO);
    match how {
        Change::Replace => {
            m.header.kind = RouteType::Unicast;
            m.header.scope = if hop.gateway.is_some() {
                RouteScope::Universe
            } else {
                RouteScope::Link
            };
        }
        Change::Delete => {
            m.header.kind = RouteType::Unspec;
            m.header.scope = RouteScope::NoWhere;
        }
    }
    // The kernel refuses an IPv4 destination with host bits set (EINVAL).
    m.attributes
        .push(RouteAttribute::Destination(dst.network().into()));
    match hop.gateway {
        Some(gw) if family(gw) == m.header.address_family => {
            m.attributes.push(RouteAttribute::Gateway(gw.into()));
        }
        // An IPv4 route over an IPv6 next hop (RFC 8950) names it in RTA_VIA, as the kernel
        // reported it.
        Some(IpAddr::V6(gw)) => m.attributes.push(RouteAttribute::Via(RouteVia::Inet6(gw))),
        Some(IpAddr::V4(gw)) => m.attributes.push(RouteAttribute::Via(RouteVia::Inet(gw))),
        None => {}
    }
    // iproute2's order, so a capture of either reads the same.
    m.attributes.push(RouteAttribute::Priority(metric));
    m.attributes.push(RouteAttribute::Oif(hop.oif));
    m
}

/// The RTM_GETROUTE body of `ip route get PEER`: the route the kernel would use to send to it.
fn lookup_message(peer: IpAddr) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family(peer);
    m.header.destination_prefix_length = match peer {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    // As `ip route get`: the answer names the table of the route found.
    m.header.flags = RouteFlags::LookupTable;
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(peer)));
    m
}

/// The gateway (if any) and output interface of the kernel's answer to a lookup.
fn next_hop_of(answer: &RouteMessage) -> Option<(Option<IpAddr>, u32)> {
    let mut gateway = None;
    let mut oif = None;
    for a in &answer.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet(a))
            | RouteAttribute::Via(RouteVia::Inet(a)) => gateway = Some(IpAddr::V4(*a)),
            RouteAttribute::Gateway(RouteAddress::Inet6(a))
            | RouteAttribute::Via(RouteVia::Inet6(a)) => gateway = Some(IpAddr::V6(*a)),
            _ => {}
        }
    }
    Some((gateway, oif?))
}

/// A synchronous rtnetlink client: one request at a time, then its answer.
#[derive(Debug)]
struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// Netlink messages in a datagram start on 4-byte boundaries (NLMSG_ALIGN).
fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// One request as bytes: `msg` with `flags` (besides NLM_F_REQUEST) and sequence number `seq`.
fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    // Sets the header's length, which `serialize` relies on to fill the buffer exactly.
    packet.finalize();
    let mut out = vec![0; packet.buffer_len()];
    packet.serialize(&mut out);
    out
}

impl Rtnl {
    /// Answers come before `send` returns; the timeout only bounds a kernel that never answers,
    /// so a bug there stalls the engine for a second, not for ever.
    const TIMEOUT: Duration = Duration::from_secs(1);

    fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        socket2::SockRef::from(&socket).set_read_timeout(Some(Self::TIMEOUT))?;
        Ok(Self {
            socket,
            seq: 0,
            // Answers here are one route or link, or an error quoting our request: far less.
            buf: vec![0; 32 * 1024],
        })
    }

    /// Sends `msg` and returns the kernel's answer: `None` for an acknowledgement, the message
    /// for a query, the errno of a refusal as an [`io::Error`].
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Option<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        self.socket.send(&encode(msg, flags, self.seq), 0)?;
        loop {
            let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer from the kernel within {:?}", Self::TIMEOUT),
                    ))
                }
                Err(e) => return Err(e),
            };
            let mut off = 0;
            while off < n {
                let bytes = &self.buf[off..n];
                let nl = NetlinkBuffer::new_checked(bytes).map_err(invalid)?;
                let len = nl.length() as usize;
                off += align4(len);
                // An answer to an earlier request that timed out: not ours.
                if nl.sequence_number() != self.seq {
                    continue;
                }
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..len])
                    .map_err(invalid)?;
                match m.payload {
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(None),
                    NetlinkPayload::InnerMessage(m) => return Ok(Some(m)),
                    _ => {}
                }
            }
        }
    }

    /// The interface index of device `name` (RTM_GETLINK by name).
    fn link_index(&mut self, name: &str) -> Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(RouteNetlinkMessage::GetLink(m), 0) {
            Ok(Some(RouteNetlinkMessage::NewLink(l))) => Ok(l.header.index),
            Ok(_) => bail!("looking up device {name}: the kernel answered without it"),
            Err(e) => bail!("looking up device {name}: {}", explain(&e)),
        }
    }

    /// The name of the device with interface index `index`.
    fn link_name(&mut self, index: u32) -> Result<String> {
        self.link(index).map(|(name, _)| name)
    }

    /// The name and MTU of the device with interface index `index`.
    fn link(&mut self, index: u32) -> Result<(String, u32)> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(RouteNetlinkMessage::NewLink(l)) =
            self.request(RouteNetlinkMessage::GetLink(m), 0)?
        {
            let (mut name, mut mtu) = (None, None);
            for a in l.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = Some(n),
                    LinkAttribute::Mtu(m) => mtu = Some(m),
                    _ => {}
                }
            }
            if let (Some(name), Some(mtu)) = (name, mtu) {
                return Ok((name, mtu));
            }
        }
        bail!("no device with index {index}")
    }
}

fn invalid(e: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unreadable answer from the kernel: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeSet, process::Command};

    use super::*;

    fn hop(gateway: Option<&str>, oif: u32) -> NextHop {
        NextHop {
            gateway: gateway.map(|g| g.parse().unwrap()),
            oif,
            dev: "dev0".to_owned(),
        }
    }

    /// Known answer: the bytes of `ip route replace 10.1.0.0/16 dev IF7 proto 87 metric 100`,
    /// as `strace -x -e sendmsg` shows iproute2 6.x sending them (its sequence number aside).
    #[test]
    fn replace_message_bytes() {
        let m = route_message(
            Change::Replace,
            "10.1.0.0/16".parse().unwrap(),
            &hop(None, 7),
            100,
        );
        let bytes = encode(
            RouteNetlinkMessage::NewRoute(m),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            1,
        );
        #[rustfmt::skip]
        let want: [u8; 52] = [
            // nlmsghdr: length 52, RTM_NEWROUTE (24), REQUEST|ACK|REPLACE|CREATE, seq 1, port 0
            0x34, 0, 0, 0, 0x18, 0, 0x05, 0x05, 1, 0, 0, 0, 0, 0, 0, 0,
            // rtmsg: AF_INET, /16, src /0, tos 0, main table, proto 87, scope link, unicast, flags 0
            2, 16, 0, 0, 254, 87, 253, 1, 0, 0, 0, 0,
            // RTA_DST 10.1.0.0
            8, 0, 1, 0, 10, 1, 0, 0,
            // RTA_PRIORITY 100
            8, 0, 6, 0, 100, 0, 0, 0,
            // RTA_OIF 7
            8, 0, 4, 0, 7, 0, 0, 0,
        ];
        assert_eq!(bytes, want);
    }

    #[test]
    fn delete_matches_any_scope_and_type() {
        let m = route_message(
            Change::Delete,
            "2001:db8:9::7/128".parse().unwrap(),
            &hop(Some("fe80::1"), 3),
            50,
        );
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.destination_prefix_length, 128);
        assert_eq!(m.header.scope, RouteScope::NoWhere);
        assert_eq!(m.header.kind, RouteType::Unspec);
        assert_eq!(m.header.protocol, RouteProtocol::Other(87));
        assert_eq!(m.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(
            m.attributes,
            vec![
                RouteAttribute::Destination("2001:db8:9::7".parse::<IpAddr>().unwrap().into()),
                RouteAttribute::Gateway("fe80::1".parse::<IpAddr>().unwrap().into()),
                RouteAttribute::Priority(50),
                RouteAttribute::Oif(3),
            ]
        );
    }

    #[test]
    fn pin_over_a_gateway_has_universe_scope_and_host_bits_are_cleared() {
        let m = route_message(
            Change::Replace,
            "198.51.100.7/24".parse().unwrap(),
            &hop(Some("192.0.2.254"), 2),
            100,
        );
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(
            m.attributes[0],
            RouteAttribute::Destination(RouteAddress::Inet("198.51.100.0".parse().unwrap()))
        );
        assert_eq!(
            m.attributes[1],
            RouteAttribute::Gateway(RouteAddress::Inet("192.0.2.254".parse().unwrap()))
        );
    }

    #[test]
    fn ipv4_route_over_an_ipv6_next_hop_uses_via() {
        let m = route_message(
            Change::Replace,
            "198.51.100.7/32".parse().unwrap(),
            &hop(Some("fe80::1"), 2),
            100,
        );
        assert_eq!(
            m.attributes[1],
            RouteAttribute::Via(RouteVia::Inet6("fe80::1".parse().unwrap()))
        );
    }

    #[test]
    fn lookup_message_and_answer() {
        let m = lookup_message("2001:db8::1".parse().unwrap());
        assert_eq!(m.header.address_family, AddressFamily::Inet6);
        assert_eq!(m.header.destination_prefix_length, 128);
        assert_eq!(m.header.flags, RouteFlags::LookupTable);
        assert_eq!(m.attributes.len(), 1);

        // The kernel's answer, through the wire and back, as the client reads it.
        let mut answer = RouteMessage::default();
        answer.header.address_family = AddressFamily::Inet;
        answer.header.destination_prefix_length = 32;
        answer.attributes = vec![
            RouteAttribute::Table(254),
            RouteAttribute::Destination(RouteAddress::Inet("198.51.100.7".parse().unwrap())),
            RouteAttribute::Oif(2),
            RouteAttribute::PrefSource(RouteAddress::Inet("192.0.2.1".parse().unwrap())),
            RouteAttribute::Gateway(RouteAddress::Inet("192.0.2.254".parse().unwrap())),
        ];
        let bytes = encode(RouteNetlinkMessage::NewRoute(answer), 0, 9);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(back)) = back.payload else {
            panic!("not a route: {back:?}");
        };
        assert_eq!(
            next_hop_of(&back),
            Some((Some("192.0.2.254".parse().unwrap()), 2))
        );
        assert_eq!(next_hop_of(&RouteMessage::default()), None);
    }

    #[test]
    fn kernel_errors_are_explained() {
        let e = explain(&io::Error::from_raw_os_error(Errno::ESRCH as i32));
        assert!(e.starts_with("the kernel has no such route ("), "{e}");
        let e = explain(&io::Error::from_raw_os_error(Errno::ENETUNREACH as i32));
        assert!(
            e.starts_with("no route to that network or gateway ("),
            "{e}"
        );
    }

    /// `ip -j [-6] route show proto 87` as "DST [via GW] dev DEV metric M" lines.
    fn shown(family: &str) -> BTreeSet<String> {
        #[derive(serde::Deserialize)]
        struct Route {
            dst: String,
            gateway: Option<String>,
            dev: String,
            metric: Option<u32>,
        }
        let out = crate::netns::ip_output(&["-j", family, "route", "show", "proto", "87"]).unwrap();
        let routes: Vec<Route> = serde_json::from_str(&out).unwrap();
        routes
            .into_iter()
            .map(|r| {
                let via = r.gateway.map(|g| format!("via {g} ")).unwrap_or_default();
                format!(
                    "{} {via}dev {} metric {}",
                    r.dst,
                    r.dev,
                    r.metric.unwrap_or(0)
                )
            })
            .collect()
    }

    /// `ip -j route get ADDR` as "[via GW] dev DEV".
    fn got(addr: &str) -> String {
        #[derive(serde::Deserialize)]
        struct Got {
            gateway: Option<String>,
            dev: String,
        }
        let out = crate::netns::ip_output(&["-j", "route", "get", addr]).unwrap();
        let got: Vec<Got> = serde_json::from_str(&out).unwrap();
        let via = got[0]
            .gateway
            .as_ref()
            .map(|g| format!("via {g} "))
            .unwrap_or_default();
        format!("{via}dev {}", got[0].dev)
    }

    fn set(routes: &[&str]) -> BTreeSet<String> {
        routes.iter().map(|r| (*r).to_owned()).collect()
    }

    fn nets(prefixes: &[&str]) -> Vec<IpNet> {
        prefixes.iter().map(|p| p.parse().unwrap()).collect()
    }

    /// In a network namespace of its own (unshared by the test's thread, so it vanishes with
    /// it, even on a panic): an underlay veth with IPv4 and IPv6 default routes, and a second
    /// veth standing for the TUN device. Prefixes go in and out through netlink, a peer inside
    /// one stays on the underlay, shared prefixes are counted, and nothing is left at the end.
    #[test]
    #[ignore = "needs root (a network namespace of its own); run by scripts/test.sh"]
    fn routes_and_pins_in_a_namespace() {
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            // `ip` runs as a child of this thread, so in its namespace.
            for cmd in [
                "link set lo up",
                "link add u0 type veth peer name u0p",
                "link add tun0 type veth peer name tun0p",
                "link set u0p up",
                "link set tun0p up",
                "link set u0 up",
                "link set tun0 up",
                "addr add 192.0.2.1/24 dev u0",
                "addr add 2001:db8:1::1/64 dev u0 nodad",
                "route add default via 192.0.2.254 dev u0",
                "-6 route add default via 2001:db8:1::fe dev u0",
            ] {
                let st = Command::new("ip")
                    .args(cmd.split_whitespace())
                    .status()
                    .unwrap();
                assert!(st.success(), "ip {cmd}");
            }
            let mut k = KernelRoutes::new(
                "tun0",
                100,
                ["198.51.100.7", "2001:db8:9::7", "203.0.113.9"]
                    .iter()
                    .map(|a| a.parse().unwrap())
                    .collect(),
            );
            k.add(&nets(&["10.0.0.0/8", "198.51.100.0/24", "2001:db8:9::/48"]));
            assert_eq!(
                shown("-4"),
                set(&[
                    "10.0.0.0/8 dev tun0 metric 100",
                    "198.51.100.0/24 dev tun0 metric 100",
                    "198.51.100.7 via 192.0.2.254 dev u0 metric 100",
                ])
            );
            assert_eq!(
                shown("-6"),
                set(&[
                    "2001:db8:9::/48 dev tun0 metric 100",
                    "2001:db8:9::7 via 2001:db8:1::fe dev u0 metric 100",
                ])
            );
            // The peers stay on the underlay; their neighbours go into the tunnel.
            assert_eq!(got("198.51.100.7"), "via 192.0.2.254 dev u0");
            assert_eq!(got("198.51.100.8"), "dev tun0");
            assert_eq!(got("2001:db8:9::7"), "via 2001:db8:1::fe dev u0");
            assert_eq!(got("2001:db8:9::8"), "dev tun0");

            // A second connection routing the same prefix shares its kernel route.
            k.add(&nets(&["198.51.100.0/24"]));
            k.remove(&nets(&["198.51.100.0/24"]));
            assert_eq!(got("198.51.100.8"), "dev tun0");
            assert_eq!(got("198.51.100.7"), "via 192.0.2.254 dev u0");
            // The last one out takes the prefix and, no longer needed, the pin.
            k.remove(&nets(&["198.51.100.0/24"]));
            assert_eq!(shown("-4"), set(&["10.0.0.0/8 dev tun0 metric 100"]));
            assert_eq!(got("198.51.100.8"), "via 192.0.2.254 dev u0");

            // A refusal names the route and what the kernel meant.
            let e = k
                .tun_route("198.51.100.0/24".parse().unwrap(), Change::Delete)
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                "removing route 198.51.100.0/24 dev tun0 proto 87 metric 100: the kernel has \
                 no such route (No such process (os error 3))"
            );

            k.remove(&nets(&["10.0.0.0/8", "2001:db8:9::/48"]));
            assert_eq!(shown("-4"), set(&[]));
            assert_eq!(shown("-6"), set(&[]));

            // A missing device is logged and retried, never a panic; nothing goes in.
            let mut missing = KernelRoutes::new("nosuch0", 100, Vec::new());
            missing.add(&nets(&["10.9.0.0/16"]));
            let e = missing
                .tun_route("10.9.0.0/16".parse().unwrap(), Change::Replace)
                .unwrap_err();
            assert!(
                format!("{e:#}").contains("looking up device nosuch0: no such device"),
                "{e:#}"
            );
            missing.remove(&nets(&["10.9.0.0/16"]));
            assert_eq!(shown("-4"), set(&[]));
        })
        .join()
        .unwrap();
    }
}

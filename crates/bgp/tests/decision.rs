//! The decision process (RFC 4271 §9.1.2.2), one tie-breaker at a time.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use bgp::{
    packet::{
        attribute::{AsPath, AsSegment, NextHop, PathAttrs, SegmentType},
        iana::Origin,
    },
    rib::{best_path, Candidate, Path, PathSource},
    PeerId,
};

struct C {
    peer: usize,
    external: bool,
    router_id: u8,
    addr: u8,
    attrs: PathAttrs,
}

impl C {
    fn new(peer: usize, path: &[u32]) -> Self {
        Self {
            peer,
            external: true,
            router_id: peer as u8,
            addr: peer as u8,
            attrs: PathAttrs {
                as_path: AsPath::sequence(path.iter().copied()),
                ..PathAttrs::default()
            },
        }
    }

    fn build(self) -> Candidate {
        Candidate {
            source: PathSource::Peer {
                id: PeerId(self.peer),
                external: self.external,
                router_id: Ipv4Addr::new(10, 0, 0, self.router_id),
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, self.addr)),
            },
            path: Path {
                attrs: Arc::new(self.attrs),
                next_hop: NextHop::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, self.addr))),
            },
        }
    }
}

fn winner(cands: Vec<C>) -> usize {
    let v: Vec<Candidate> = cands.into_iter().map(C::build).collect();
    let i = best_path(&v).unwrap();
    v[i].source.peer().unwrap().0
}

fn with(mut c: C, f: impl FnOnce(&mut C)) -> C {
    f(&mut c);
    c
}

#[test]
fn empty_and_single() {
    assert_eq!(best_path(&[]), None);
    assert_eq!(best_path(&[C::new(1, &[1]).build()]), Some(0));
}

#[test]
fn local_route_wins() {
    let local = Candidate {
        source: PathSource::Local,
        path: Path {
            attrs: Arc::new(PathAttrs::default()),
            next_hop: NextHop::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        },
    };
    let learned = with(C::new(1, &[]), |c| c.attrs.local_pref = Some(1000)).build();
    assert_eq!(best_path(&[learned, local]), Some(1));
}

#[test]
fn highest_local_pref_first() {
    // A longer path with a higher LOCAL_PREF wins.
    let a = C::new(1, &[1]);
    let b = with(C::new(2, &[2, 3, 4]), |c| c.attrs.local_pref = Some(150));
    assert_eq!(winner(vec![a, b]), 2);
    // A missing LOCAL_PREF counts as 100.
    let a = with(C::new(1, &[1, 2]), |c| c.attrs.local_pref = Some(99));
    let b = C::new(2, &[2, 3, 4]);
    assert_eq!(winner(vec![a, b]), 2);
}

#[test]
fn shortest_as_path() {
    assert_eq!(winner(vec![C::new(1, &[1, 2, 3]), C::new(2, &[2, 3])]), 2);
    // An AS_SET counts as one, confederation segments as zero.
    let set = with(C::new(1, &[1]), |c| {
        c.attrs.as_path.segments.push(AsSegment {
            kind: SegmentType::Set,
            asns: vec![7, 8, 9],
        });
    });
    let confed = with(C::new(2, &[2, 3, 4]), |c| {
        c.attrs.as_path.segments.insert(
            0,
            AsSegment {
                kind: SegmentType::ConfedSequence,
                asns: vec![64512, 64513],
            },
        );
    });
    // 1 + {7 8 9} = 2 < (64512 64513) 2 3 4 = 3.
    assert_eq!(winner(vec![confed, set]), 1);
}

#[test]
fn lowest_origin() {
    let a = with(C::new(1, &[1]), |c| c.attrs.origin = Origin::Incomplete);
    let b = with(C::new(2, &[2]), |c| c.attrs.origin = Origin::Egp);
    let d = with(C::new(3, &[3]), |c| c.attrs.origin = Origin::Igp);
    assert_eq!(winner(vec![a, b, d]), 3);
}

#[test]
fn med_only_between_routes_from_the_same_neighbour_as() {
    // Same neighbour AS 100: lower MED wins (missing MED = 0).
    let a = with(C::new(1, &[100, 1]), |c| c.attrs.med = Some(50));
    let b = with(C::new(2, &[100, 2]), |c| c.attrs.med = Some(10));
    assert_eq!(winner(vec![a, b]), 2);
    let a = with(C::new(1, &[100, 1]), |c| c.attrs.med = Some(50));
    let b = C::new(2, &[100, 2]);
    assert_eq!(winner(vec![a, b]), 2);
    // Different neighbour ASes: MED is not compared; the router ID decides.
    let a = with(C::new(1, &[100, 1]), |c| c.attrs.med = Some(50));
    let b = with(C::new(2, &[200, 2]), |c| c.attrs.med = Some(10));
    assert_eq!(winner(vec![a, b]), 1);
    // The non-transitive case from the RFC's method: A (AS 100, MED 20) beats B (AS 100,
    // MED 30); C (AS 200) survives MED; between A and C the router ID picks A... unless C
    // has a lower one. Here C does, so C wins even though pairwise B < C by router ID.
    let a = with(C::new(5, &[100, 1]), |c| c.attrs.med = Some(20));
    let b = with(C::new(2, &[100, 1]), |c| c.attrs.med = Some(30));
    let c = with(C::new(3, &[200, 1]), |c| c.attrs.med = Some(99));
    assert_eq!(winner(vec![a, b, c]), 3);
}

#[test]
fn external_over_internal() {
    let a = with(C::new(1, &[100]), |c| c.external = false);
    let b = with(C::new(2, &[200]), |c| c.external = true);
    assert_eq!(winner(vec![a, b]), 2);
}

#[test]
fn lowest_router_id_then_lowest_address() {
    let a = with(C::new(1, &[100]), |c| c.router_id = 9);
    let b = with(C::new(2, &[200]), |c| c.router_id = 3);
    assert_eq!(winner(vec![a, b]), 2);
    let a = with(C::new(1, &[100]), |c| {
        c.router_id = 3;
        c.addr = 20;
    });
    let b = with(C::new(2, &[200]), |c| {
        c.router_id = 3;
        c.addr = 10;
    });
    assert_eq!(winner(vec![a, b]), 2);
}

#[test]
fn order_of_candidates_does_not_matter() {
    let make = || {
        vec![
            with(C::new(1, &[100, 1]), |c| c.attrs.med = Some(20)),
            with(C::new(2, &[100, 1]), |c| c.attrs.med = Some(30)),
            with(C::new(3, &[200, 1]), |c| c.attrs.med = Some(99)),
            with(C::new(4, &[1, 2, 3]), |c| c.attrs.local_pref = Some(100)),
        ]
    };
    let expected = winner(make());
    for rot in 0..4 {
        let mut v = make();
        v.rotate_left(rot);
        assert_eq!(winner(v), expected);
    }
}

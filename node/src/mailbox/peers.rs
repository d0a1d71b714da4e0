//! The user's chosen mailbox peers: `mailboxes.json` in the home, managed by
//! `mailnode mailbox add|list|remove`.
//!
//! Each entry is a PeerId and the addresses it was given with (hints for the
//! dial; the DHT is the way to find a peer). The file is public data (no
//! secret, no message content) and is written atomically: a temporary
//! file, fsync, rename, fsync of the directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use super::MailboxError;
use super::wire::MAX_MAILBOX_PEERS;

/// The file in the home.
pub const PEERS_FILE: &str = "mailboxes.json";

/// One chosen mailbox peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxPeer {
    /// Its PeerId.
    pub peer_id: PeerId,
    /// Where it was said to listen (may be empty).
    pub addrs: Vec<Multiaddr>,
}

#[derive(Serialize, Deserialize)]
struct StoredPeer {
    peer_id: String,
    addrs: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredPeers {
    version: u32,
    peers: Vec<StoredPeer>,
}

/// What [`MailboxPeers::add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A new mailbox peer.
    New,
    /// Already chosen; a new address was added to it, or nothing changed.
    Known,
}

/// The mailbox peers of one home.
#[derive(Debug)]
pub struct MailboxPeers {
    path: PathBuf,
    peers: Vec<MailboxPeer>,
}

impl MailboxPeers {
    /// Reads the list of `home` (empty if there is none yet).
    pub fn open(home: &Path) -> Result<MailboxPeers, MailboxError> {
        let path = home.join(PEERS_FILE);
        let bad = |reason: String| MailboxError::PeerList {
            path: path.display().to_string(),
            reason,
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(MailboxPeers {
                    path,
                    peers: Vec::new(),
                });
            }
            Err(err) => return Err(bad(format!("cannot read it ({err})"))),
        };
        let stored: StoredPeers =
            serde_json::from_slice(&bytes).map_err(|err| bad(format!("it is damaged ({err})")))?;
        if stored.version != 1 {
            return Err(bad(format!("unknown format version {}", stored.version)));
        }
        let mut peers = Vec::with_capacity(stored.peers.len());
        for entry in stored.peers {
            let peer_id = entry
                .peer_id
                .parse::<PeerId>()
                .map_err(|err| bad(format!("{:?} is not a PeerId ({err})", entry.peer_id)))?;
            let addrs = entry.addrs.iter().filter_map(|a| a.parse().ok()).collect();
            peers.push(MailboxPeer { peer_id, addrs });
        }
        Ok(MailboxPeers { path, peers })
    }

    /// The chosen mailbox peers, in the order they were added (deposits try
    /// them in this order).
    pub fn list(&self) -> &[MailboxPeer] {
        &self.peers
    }

    /// Just the PeerIds.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.peers.iter().map(|peer| peer.peer_id).collect()
    }

    /// Adds a mailbox peer given as a PeerId or as a multiaddr ending in
    /// `/p2p/PEERID` (the address is kept as a hint).
    pub fn add(&mut self, spec: &str) -> Result<Added, MailboxError> {
        let (peer_id, addr) = parse_peer(spec)?;
        if let Some(known) = self.peers.iter_mut().find(|p| p.peer_id == peer_id) {
            if let Some(addr) = addr
                && !known.addrs.contains(&addr)
            {
                known.addrs.push(addr);
                self.save()?;
            }
            return Ok(Added::Known);
        }
        if self.peers.len() >= MAX_MAILBOX_PEERS {
            return Err(MailboxError::PeerList {
                path: self.path.display().to_string(),
                reason: format!("at most {MAX_MAILBOX_PEERS} mailbox peers; remove one first"),
            });
        }
        self.peers.push(MailboxPeer {
            peer_id,
            addrs: addr.into_iter().collect(),
        });
        self.save()?;
        Ok(Added::New)
    }

    /// Removes a mailbox peer (given like for `add`); false if it was not
    /// chosen.
    pub fn remove(&mut self, spec: &str) -> Result<bool, MailboxError> {
        let (peer_id, _) = parse_peer(spec)?;
        let before = self.peers.len();
        self.peers.retain(|p| p.peer_id != peer_id);
        if self.peers.len() == before {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    fn save(&self) -> Result<(), MailboxError> {
        let stored = StoredPeers {
            version: 1,
            peers: self
                .peers
                .iter()
                .map(|p| StoredPeer {
                    peer_id: p.peer_id.to_string(),
                    addrs: p.addrs.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        };
        let fail = |err: std::io::Error| MailboxError::PeerList {
            path: self.path.display().to_string(),
            reason: format!("cannot write it ({err})"),
        };
        let json =
            serde_json::to_vec_pretty(&stored).map_err(|err| fail(std::io::Error::other(err)))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(fail)?;
        file.write_all(&json).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(())
    }
}

/// A PeerId, or a multiaddr whose last component is `/p2p/PEERID`.
pub fn parse_peer(spec: &str) -> Result<(PeerId, Option<Multiaddr>), MailboxError> {
    let spec = spec.trim();
    let bad = |reason: String| MailboxError::PeerList {
        path: PEERS_FILE.into(),
        reason,
    };
    if spec.starts_with('/') {
        let addr: Multiaddr = spec.parse().map_err(|err| {
            bad(format!("{spec:?} is not a multiaddr ({err}); example: /ip4/198.51.100.7/tcp/4870/p2p/12D3KooW..."))
        })?;
        let Some(Protocol::P2p(peer_id)) = addr.iter().last() else {
            return Err(bad(format!(
                "the multiaddr {spec:?} must end in /p2p/PEERID"
            )));
        };
        let mut dial = addr.clone();
        dial.pop();
        let hint = (!dial.is_empty()).then_some(dial);
        return Ok((peer_id, hint));
    }
    let peer_id = spec.parse::<PeerId>().map_err(|err| {
        bad(format!(
            "{spec:?} is neither a PeerId nor a multiaddr ({err})"
        ))
    })?;
    Ok((peer_id, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_list_remove_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = PeerId::random();
        let b = PeerId::random();
        let mut peers = MailboxPeers::open(dir.path()).expect("open");
        assert!(peers.list().is_empty());
        assert_eq!(peers.add(&a.to_string()).expect("add"), Added::New);
        let addr = format!("/ip4/198.51.100.7/tcp/4870/p2p/{b}");
        assert_eq!(peers.add(&addr).expect("add addr"), Added::New);
        assert_eq!(peers.add(&b.to_string()).expect("again"), Added::Known);
        let peers = MailboxPeers::open(dir.path()).expect("reopen");
        assert_eq!(peers.peer_ids(), vec![a, b]);
        assert_eq!(
            peers.list()[1].addrs,
            vec![
                "/ip4/198.51.100.7/tcp/4870"
                    .parse::<Multiaddr>()
                    .expect("addr")
            ]
        );
        let mut peers = peers;
        assert!(peers.remove(&addr).expect("remove"));
        assert!(!peers.remove(&b.to_string()).expect("gone"));
        assert_eq!(
            MailboxPeers::open(dir.path()).expect("reopen").peer_ids(),
            vec![a]
        );
    }

    #[test]
    fn bad_specs_are_clear_errors() {
        let err = parse_peer("/ip4/198.51.100.7/tcp/4870").expect_err("no p2p");
        assert!(err.to_string().contains("must end in /p2p/PEERID"), "{err}");
        let err = parse_peer("not-a-peer").expect_err("garbage");
        assert!(err.to_string().contains("neither a PeerId"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(PEERS_FILE), b"{").expect("write");
        assert!(
            MailboxPeers::open(dir.path())
                .expect_err("damaged")
                .to_string()
                .contains("damaged")
        );
    }
}

//! libp2p network service (being written).

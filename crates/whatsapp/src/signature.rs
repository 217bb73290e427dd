//! Signatures and the subscription handshake.

//! Scripted conversations (being written).

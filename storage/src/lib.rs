//! Durable storage: fjall keyspaces, the versioned record codec, the group-commit writer and recovery.

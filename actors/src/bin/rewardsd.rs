//! `rewardsd`: the rewards transaction processor server.

fn main() -> anyhow::Result<()> {
    // The HTTP server needs the storage and actor layers, which are not built yet; say so clearly
    // rather than pretend to serve.
    anyhow::bail!("rewardsd cannot serve yet: the storage and HTTP layers are still being built")
}

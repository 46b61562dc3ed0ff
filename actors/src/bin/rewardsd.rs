//! `rewardsd`: the rewards transaction processor server.

fn main() -> anyhow::Result<()> {
    Ok(())
}

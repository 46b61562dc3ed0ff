//! `rewards-load`: drives a running rewardsd with realistic traffic and reports what it measured.

fn main() -> anyhow::Result<()> {
    Ok(())
}

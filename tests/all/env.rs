//! Which environment reaches a server: the tenant's variables, never catwalk's own configuration.

use anyhow::Result;
use serde_json::json;

use crate::support::{Catwalk, Client, fixture};

async fn server_env(flags: &[&str], host_env: &[(&str, &str)]) -> Result<Vec<String>> {
    let cw = Catwalk::start(flags, &fixture(), host_env).await?;
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-11-25").await?;
    let names: Vec<String> =
        serde_json::from_str(&client.call_text(json!(1), "echo_env", json!({})).await?)?;
    cw.stop().await?;
    Ok(names)
}

#[tokio::test]
async fn the_tenant_env_reaches_the_server_and_catwalk_own_does_not() -> Result<()> {
    let host = [
        ("TENANT_API_KEY", "canary-7f3a"),
        ("CATWALK_ADMIN_TOKEN", "x"),
        ("MCP_PACKAGE", "p"),
        ("PORT", "1"),
    ];
    let names = server_env(&["--env", "GIVEN=1"], &host).await?;
    assert!(names.contains(&"TENANT_API_KEY".to_owned()), "{names:?}");
    assert!(names.contains(&"GIVEN".to_owned()));
    assert!(names.contains(&"PATH".to_owned()) && names.contains(&"HOME".to_owned()));
    for own in ["CATWALK_ADMIN_TOKEN", "MCP_PACKAGE", "PORT"] {
        assert!(!names.contains(&own.to_owned()), "{own} leaked: {names:?}");
    }

    let names = server_env(
        &["--pass-env", "ONLY_THIS"],
        &[("ONLY_THIS", "1"), ("OTHER", "2")],
    )
    .await?;
    assert!(
        names.contains(&"ONLY_THIS".to_owned()) && !names.contains(&"OTHER".to_owned()),
        "{names:?}"
    );
    Ok(())
}

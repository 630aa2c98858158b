//! `huifang user add|passwd|disable|list|token|revoke`: the people who use
//! the web door. A thin door onto [`crate::ops::users`]; passwords come
//! from standard input only (`--password-stdin`), never the command line.

use std::io::Read;

use anyhow::{Context, bail};

use super::{Exit, UserAction, UserArgs};
use crate::config::Config;
use crate::ops::access::Role;
use crate::ops::users::{self, AuthSettings, NewUser};
use crate::store::Store;

fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().take(4096).read_to_string(&mut s).context("reading the password from standard input")?;
    let p = s.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&s).to_string();
    if p.is_empty() {
        bail!("--password-stdin: standard input is empty");
    }
    Ok(p)
}

fn actor(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "cli".into())
}

/// Runs `huifang user`.
pub fn run(args: UserArgs) -> anyhow::Result<Exit> {
    let cfg = Config::load(&args.config)?;
    super::init_logging(&cfg.log.level);
    let s = AuthSettings::from_config(&cfg.http);
    let by = actor(&args.by);
    let password = match &args.action {
        UserAction::Add { password_stdin, .. } | UserAction::Passwd { password_stdin, .. } => {
            if !password_stdin {
                bail!(
                    "give the password on standard input with --password-stdin (never on the command line)"
                );
            }
            Some(read_password()?)
        }
        _ => None,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let store = Store::open(&cfg.database_url()).await?;
        let r = async {
            match args.action {
                UserAction::Add { login, roles, staff_id, branches, .. } => {
                    let roles = Role::parse_all(&roles, "role")?;
                    let u = users::add_user(
                        &store,
                        &by,
                        NewUser { login, roles, staff_id, branches },
                        password.expect("read above"),
                        &s,
                    )
                    .await?;
                    eprintln!("user {} added ({})", u.login, u.roles.join(", "));
                }
                UserAction::Passwd { login, .. } => {
                    users::set_password(&store, &by, &login, password.expect("read above"), &s).await?;
                    eprintln!("password of {login} changed; their sessions ended");
                }
                UserAction::Disable { login } => {
                    if users::disable_user(&store, &by, &login).await? {
                        eprintln!("user {login} disabled; sessions ended, tokens revoked");
                    } else {
                        eprintln!("user {login} was already disabled");
                    }
                }
                UserAction::List => {
                    println!(
                        "{:<24}  {:<32}  {:<10}  {:<20}  DISABLED",
                        "LOGIN", "ROLES", "STAFF", "BRANCHES"
                    );
                    for u in users::list_users(&store).await? {
                        println!(
                            "{:<24}  {:<32}  {:<10}  {:<20}  {}",
                            u.login,
                            u.roles.join(","),
                            u.staff_id.as_deref().unwrap_or("-"),
                            if u.branches.is_empty() { "-".to_string() } else { u.branches.join(",") },
                            u.disabled_at.map(crate::audit::time_text).unwrap_or_else(|| "-".into()),
                        );
                    }
                }
                UserAction::Token { login, roles, expires_days, label } => {
                    let roles = Role::parse_all(&roles, "role")?;
                    let (secret, row) =
                        users::create_token(&store, &by, &login, roles, expires_days, label).await?;
                    // the token alone on stdout: scripts capture it
                    println!("{secret}");
                    eprintln!(
                        "token {} for {login} ({}), expires {}; shown once",
                        row.id,
                        row.roles.join(","),
                        crate::audit::time_text(row.expires_at)
                    );
                }
                UserAction::Revoke { token_id } => {
                    let id = uuid::Uuid::parse_str(&token_id).context("TOKEN_ID: not a token id (UUID)")?;
                    if users::revoke_token(&store, &by, id).await? {
                        eprintln!("token {id} revoked");
                    } else {
                        eprintln!("token {id} was already revoked");
                    }
                }
            }
            anyhow::Ok(Exit::Ok)
        }
        .await;
        store.close().await;
        r
    })
}

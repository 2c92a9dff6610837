//! `ward audit sink`: the operator adds, lists and removes forwarding sinks. A
//! sink's URL and credentials (HEC token, webhook HMAC key, Basic credentials)
//! are sealed with the "settings" purpose key at once and never printed again;
//! listings and audit events show only scheme, host and port.

use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use ward_core::audit::actions;
use ward_core::egress::{Destination, EgressPolicy, EgressRefusal};
use ward_core::{Actor, AuditEvent};
use ward_crypto::{OsRandom, SecureRandom, SettingsContext, SettingsKey};
use ward_jobs::egress::Origin;
use ward_jobs::forwarding::{SinkConfig, SinkKind, SinkSecrets, check_sink};
use ward_store::{Conflict, StoreError, StoredSink};
use zeroize::Zeroizing;

use crate::bootstrap::{self, Installation};
use crate::cli::SinkCommand;

fn event(action: &'static str) -> Result<AuditEvent> {
    Ok(AuditEvent::new(
        bootstrap::new_event_id()?,
        bootstrap::now(),
        None,
        Actor::system("cli"),
        bootstrap::cli_context()?,
        action,
    ))
}

/// What the egress policy says about a sink whose host is an address literal or
/// `localhost` (names are resolved, and judged, only when `ward serve` connects).
fn refused_here(egress: &EgressPolicy, config: &SinkConfig) -> Option<EgressRefusal> {
    let target = config.target();
    let authority = target.split_once("://").map_or(target.as_str(), |(_, a)| a);
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let localhost = host.eq_ignore_ascii_case("localhost");
    let address = if localhost {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().ok()?
    };
    egress
        .check(&Destination {
            host_name: localhost.then_some("localhost"),
            address,
            port,
        })
        .err()
}

fn read_secret(file: Option<&std::path::Path>, stdin: bool) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let mut buf = Zeroizing::new(String::new());
    if let Some(f) = file {
        *buf =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
    } else if stdin {
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("reading the secret from standard input")?;
    } else {
        return Ok(None);
    }
    let trimmed = buf.trim();
    if trimmed.is_empty() {
        bail!("the secret is empty");
    }
    if trimmed.len() > 4096 {
        bail!("the secret is longer than 4096 bytes");
    }
    Ok(Some(Zeroizing::new(trimmed.as_bytes().to_vec())))
}

pub async fn run(inst: &Installation, egress: &EgressPolicy, cmd: SinkCommand) -> Result<()> {
    match cmd {
        SinkCommand::Add {
            name,
            kind,
            address,
            url,
            basic_user,
            basic_password_file,
            ca_file,
            server_name,
            batch_size,
            secret_file,
            secret_stdin,
            from_now,
        } => {
            if name.trim().is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                bail!("--name: 1 to 100 characters, no control characters");
            }
            let kind = SinkKind::parse(&kind).ok_or_else(|| {
                anyhow!(
                    "--kind: must be one of syslog-udp, syslog-tcp, syslog-tls, splunk-hec, webhook"
                )
            })?;
            if let Some(f) = &ca_file
                && !f.is_file()
            {
                bail!("--ca-file: {} is not a readable file", f.display());
            }
            // The URL is checked before anything else is read, and its refusal
            // never repeats it (it may hold the very secret being refused).
            let url = url.map(Zeroizing::new);
            let endpoint = match url.as_deref() {
                Some(u) => Some(
                    Origin::of(u)
                        .map_err(|_| anyhow!("--url must be an http:// or https:// URL"))?
                        .to_string(),
                ),
                None => None,
            };
            let config = SinkConfig {
                address,
                endpoint,
                url: None,
                ca_file: ca_file.map(|f| std::fs::canonicalize(&f).unwrap_or(f)),
                server_name,
                batch_size,
            };
            let token = read_secret(secret_file.as_deref(), secret_stdin)?;
            let basic_password = read_secret(basic_password_file.as_deref(), false)?;
            let text = |b: Option<Zeroizing<Vec<u8>>>| -> Result<Option<Zeroizing<String>>> {
                b.map(|b| {
                    String::from_utf8(b.to_vec())
                        .map(Zeroizing::new)
                        .map_err(|_| anyhow!("secrets must be UTF-8 text"))
                })
                .transpose()
            };
            let secrets = SinkSecrets {
                url,
                token: text(token)?,
                basic_user: basic_user.map(Zeroizing::new),
                basic_password: text(basic_password)?,
            };
            check_sink(kind, &config, &secrets).map_err(|e| anyhow!(e))?;
            if let Some(refusal) = refused_here(egress, &config) {
                // `ward serve` may run with another allow-list, so this warns
                // rather than refuses; delivery checks again at every connect.
                eprintln!(
                    "warning: {refusal}; `ward serve` will not deliver to this sink until egress.allow opens it"
                );
            }
            let mut id = [0u8; 16];
            OsRandom.fill(&mut id).map_err(|e| anyhow!("{e}"))?;
            let id = ward_core::EventId::from_random(id).as_str().to_owned();
            let sealed = if secrets.is_empty() {
                None
            } else {
                let plain = Zeroizing::new(serde_json::to_vec(&secrets)?);
                Some(
                    SettingsKey::derive(&inst.master, &inst.salt)
                        .seal(
                            &plain,
                            SettingsContext {
                                owner_kind: "audit_sink",
                                owner_id: &id,
                                field: "credentials",
                                master_version: inst.master_version,
                            },
                            &OsRandom,
                        )
                        .map_err(|e| anyhow!("sealing the secret: {e}"))?,
                )
            };
            let start = if from_now {
                inst.store.audit_tree_size().await?
            } else {
                0
            };
            let target = config.target();
            let sink = StoredSink {
                id: id.clone(),
                name: name.clone(),
                kind: kind.as_str().to_owned(),
                config: serde_json::to_string(&config)?,
                secret_master_version: sealed.as_ref().map(|_| inst.master_version),
                secret: sealed,
                created_at: bootstrap::now(),
                delivered_size: start,
                failing_since: None,
                alerted: false,
                last_error: None,
            };
            let e = event(actions::AUDIT_SINK_CREATED)?
                .target("audit_sink", id)
                .details(json!({ "name": name, "kind": kind.as_str(), "address": target, "from_leaf": start }));
            match inst.store.create_audit_sink(&sink, &e).await {
                Err(StoreError::Conflict(Conflict::SinkNameTaken)) => {
                    bail!("a sink named {name:?} already exists")
                }
                other => other?,
            }
            println!(
                "added {} sink {name} -> {target}, starting at leaf {start}; `ward serve` delivers to it",
                kind.as_str()
            );
            Ok(())
        }
        SinkCommand::List => {
            let size = inst.store.audit_tree_size().await?;
            for s in inst.store.list_audit_sinks().await? {
                let config: SinkConfig = serde_json::from_str(&s.config)?;
                let target = config.target();
                let status = match (&s.failing_since, &s.last_error) {
                    (Some(since), Some(err)) => {
                        format!("FAILING since {}: {err}", since.to_rfc3339())
                    }
                    _ => "ok".to_owned(),
                };
                println!(
                    "{}\t{}\t{target}\tdelivered {}/{size}\tlag {}\t{status}",
                    s.name,
                    s.kind,
                    s.delivered_size,
                    size.saturating_sub(s.delivered_size)
                );
            }
            Ok(())
        }
        SinkCommand::Remove { name } => {
            let e = event(actions::AUDIT_SINK_REMOVED)?
                .target("audit_sink", name.clone())
                .details(json!({ "name": name }));
            match inst.store.remove_audit_sink(&name, &e).await {
                Err(StoreError::NotFound) => bail!("no sink named {name:?}"),
                other => other?,
            }
            println!("removed sink {name}");
            Ok(())
        }
    }
}

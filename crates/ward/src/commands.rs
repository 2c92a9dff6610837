//! The commands: serve, migrate, config check, and the operator's tenant and user
//! management (which write their audit events like any other change).

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use ward_core::audit::actions;
use ward_core::domain::{check_domain, verification_record};
use ward_core::password_policy::check_new_password;
use ward_core::tenant::{Tenant, check_slug, check_tenant_name, slug_from_name};
use ward_core::user::{User, UserChange, check_display_name};
use ward_core::{Actor, AuditEvent, Email, Role, TenantId, UserId};
use ward_crypto::{OsRandom, PasswordHashing, SecureRandom};
use ward_server::{AppState, SystemClock};
use ward_store::{Conflict, DomainClaim, StoreError, UpdateOutcome};
use zeroize::Zeroizing;

use crate::bootstrap::{self, Installation, cli_context, new_event_id};
use crate::cli::{
    Cli, Command, ConfigCommand, CreateUser, DomainCommand, TenantCommand, UserCommand,
};
use crate::config::{Overrides, Settings};

pub async fn run(cli: Cli) -> Result<()> {
    // Rule checks run in CI pipelines: no configuration, data directory or logs.
    if let Command::Rules(cmd) = cli.command {
        return crate::rules::run(cmd);
    }
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        database_url: cli.database_url.clone(),
        listen,
        log_format: cli.log_format.clone(),
        data_dir: cli.data_dir.clone(),
    };
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    init_logging(&settings);
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            println!("{}", settings.redacted_json()?);
            println!("configuration is valid");
            Ok(())
        }
        Command::Serve { .. } => serve(&settings).await,
        Command::Migrate => {
            let inst = bootstrap::open(&settings).await?;
            let version = inst.store.schema_version().await?.unwrap_or(0);
            println!("database is at schema version {version}");
            Ok(())
        }
        Command::Tenant(cmd) => {
            let inst = bootstrap::open(&settings).await?;
            tenant(&settings, &inst, cmd).await
        }
        Command::User(cmd) => {
            let inst = bootstrap::open(&settings).await?;
            user(&settings, &inst, cmd).await
        }
        Command::Backup(cmd) => crate::backup::run(&settings, cmd).await,
        Command::Audit(crate::cli::AuditCommand::Verify {
            export: Some(file),
            public_key,
            ..
        }) => crate::audit::verify_export_file(&file, public_key.as_deref().unwrap_or_default()),
        Command::Audit(cmd) => {
            let inst = bootstrap::open(&settings).await?;
            crate::audit::run(&inst, &settings.egress_policy()?, cmd).await
        }
        Command::Keys(cmd) => {
            let inst = bootstrap::open(&settings).await?;
            crate::keys::run(&settings, &inst, cmd).await
        }
        Command::Rules(_) => Ok(()),
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.log_format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

async fn serve(settings: &Settings) -> Result<()> {
    let addr = settings.listen_addr()?;
    let inst = bootstrap::open(settings).await?;
    let rng: Arc<dyn SecureRandom> = Arc::new(OsRandom);
    let hashing = PasswordHashing::new(settings.password_params()?, rng.as_ref())
        .map_err(|e| anyhow!("password hashing: {e}"))?;
    let server_settings = settings.server_settings()?;
    let tls = server_settings.tls.is_some();
    let state = AppState::new(
        inst.store.clone(),
        server_settings,
        inst.keys(),
        hashing,
        Arc::new(SystemClock),
        rng,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %format!("{}://{local}", if tls { "https" } else { "http" }),
        database = inst.store.backend().as_str(),
        "Ward is listening"
    );
    let metrics = match settings.metrics_listen_addr()? {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("metrics.listen: cannot listen on {addr}"))?;
            tracing::info!(address = %format!("http://{}", l.local_addr()?), "metrics are served");
            Some(tokio::spawn(ward_server::metrics::serve_metrics(
                l,
                shutdown_signal(),
            )))
        }
        None => None,
    };
    ward_server::serve(state, listener, shutdown_signal()).await?;
    if let Some(m) = metrics {
        m.abort();
    }
    inst.store.close().await;
    tracing::info!("Ward stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

fn operator() -> Actor {
    Actor::system("cli")
}

fn random16() -> Result<[u8; 16]> {
    OsRandom
        .bytes()
        .map_err(|_| anyhow!("the OS random number generator failed"))
}

fn event(tenant: Option<&TenantId>, action: &'static str) -> Result<AuditEvent> {
    Ok(AuditEvent::new(
        new_event_id()?,
        bootstrap::now(),
        tenant.cloned(),
        operator(),
        cli_context()?,
        action,
    ))
}

async fn tenant(settings: &Settings, inst: &Installation, cmd: TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Create { name, slug } => {
            let name = check_tenant_name(&name)?;
            let slug = check_slug(&slug.unwrap_or_else(|| slug_from_name(&name)))?;
            let t = Tenant {
                id: TenantId::from_random(random16()?),
                name,
                slug,
                created_at: bootstrap::now(),
            };
            let e = event(Some(&t.id), actions::TENANT_CREATED)?
                .target("tenant", t.id.to_string())
                .details(json!({ "name": t.name, "slug": t.slug }));
            match inst.store.create_tenant(&t, &e).await {
                Ok(()) => {}
                Err(StoreError::Conflict(Conflict::SlugTaken)) => {
                    bail!("a company with slug {:?} already exists", t.slug)
                }
                Err(e) => return Err(e.into()),
            }
            println!("created company {} ({}) id {}", t.slug, t.name, t.id);
            Ok(())
        }
        TenantCommand::List => {
            for t in inst.store.list_tenants().await? {
                println!("{}\t{}\t{}", t.id, t.slug, t.name);
            }
            Ok(())
        }
        TenantCommand::Domain(cmd) => domain(settings, inst, cmd).await,
    }
}

async fn find_company(inst: &Installation, tenant: &str) -> Result<Tenant> {
    inst.store
        .find_tenant(tenant)
        .await?
        .ok_or_else(|| anyhow!("no company with slug or id {tenant:?}"))
}

/// Claims a domain for a company, with a fresh verification token.
async fn claim_domain(inst: &Installation, t: &Tenant, domain: &str) -> Result<DomainClaim> {
    let claim = DomainClaim {
        tenant_id: t.id.clone(),
        domain: domain.to_owned(),
        token: base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            random16()?,
        ),
        verified_at: None,
        verified_by: None,
        created_at: bootstrap::now(),
    };
    let e = event(Some(&t.id), actions::DOMAIN_ADDED)?
        .target("domain", domain.to_owned())
        .details(json!({ "domain": domain }));
    match inst.store.add_domain_claim(&claim, &e).await {
        Ok(()) => Ok(claim),
        Err(StoreError::Conflict(Conflict::DomainTaken)) => {
            bail!("{} already claims {domain}", t.slug)
        }
        Err(e) => Err(e.into()),
    }
}

async fn domain(settings: &Settings, inst: &Installation, cmd: DomainCommand) -> Result<()> {
    match cmd {
        DomainCommand::Add { tenant, domain } => {
            let t = find_company(inst, &tenant).await?;
            let domain = check_domain(&domain)?;
            let claim = claim_domain(inst, &t, &domain).await?;
            println!(
                "claimed {domain} for {}; publish this TXT record at {domain}: {}",
                t.slug,
                verification_record(&claim.token)
            );
            Ok(())
        }
        DomainCommand::Verify {
            tenant,
            domain,
            dns,
        } => {
            let t = find_company(inst, &tenant).await?;
            let domain = check_domain(&domain)?;
            let claims = inst.store.domain_claims(&t.id).await?;
            let claim = match claims.into_iter().find(|c| c.domain == domain) {
                Some(c) => c,
                None if dns => bail!(
                    "{} has no claim on {domain}: run `ward tenant domain add` and publish its TXT record first",
                    t.slug
                ),
                None => claim_domain(inst, &t, &domain).await?,
            };
            let method = if dns {
                let records =
                    ward_server::domain_verify::txt_records(settings.dns.resolver, &domain)
                        .await
                        .unwrap_or_default();
                if !ward_core::domain::txt_proves(&records, &claim.token) {
                    let e = event(Some(&t.id), actions::DOMAIN_VERIFICATION_FAILED)?
                        .failed()
                        .target("domain", domain.clone())
                        .details(json!({ "domain": domain, "reason": "no matching TXT record" }));
                    inst.store.record_audit(&e).await?;
                    bail!(
                        "no TXT record at {domain} carries {}",
                        verification_record(&claim.token)
                    );
                }
                "dns"
            } else {
                "operator"
            };
            let e = event(Some(&t.id), actions::DOMAIN_VERIFIED)?
                .target("domain", domain.clone())
                .details(json!({ "domain": domain, "method": method }));
            match inst
                .store
                .verify_domain_claim(&t.id, &domain, bootstrap::now(), method, &e)
                .await
            {
                Ok(true) => {
                    println!("{domain} is verified for {}", t.slug);
                    Ok(())
                }
                Ok(false) => bail!("{} has no claim on {domain}", t.slug),
                Err(StoreError::Conflict(Conflict::DomainTaken)) => {
                    bail!("another company holds {domain} verified; remove it there first")
                }
                Err(e) => Err(e.into()),
            }
        }
        DomainCommand::Remove { tenant, domain } => {
            let t = find_company(inst, &tenant).await?;
            let domain = check_domain(&domain)?;
            let e = event(Some(&t.id), actions::DOMAIN_REMOVED)?
                .target("domain", domain.clone())
                .details(json!({ "domain": domain }));
            if !inst.store.remove_domain_claim(&t.id, &domain, &e).await? {
                bail!("{} has no claim on {domain}", t.slug);
            }
            println!("removed {domain} from {}", t.slug);
            Ok(())
        }
        DomainCommand::List { tenant } => {
            let t = find_company(inst, &tenant).await?;
            for c in inst.store.domain_claims(&t.id).await? {
                let state = match (&c.verified_at, &c.verified_by) {
                    (Some(at), by) => {
                        format!(
                            "verified {} by {}",
                            at.to_rfc3339(),
                            by.as_deref().unwrap_or("?")
                        )
                    }
                    (None, _) => format!("unverified (TXT {})", verification_record(&c.token)),
                };
                println!("{}\t{state}", c.domain);
            }
            Ok(())
        }
    }
}

fn read_password_stdin() -> Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut buf)
        .context("cannot read the password from standard input")?;
    let trimmed = buf
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&buf);
    if trimmed.is_empty() {
        bail!("no password on standard input");
    }
    Ok(Zeroizing::new(trimmed.to_owned()))
}

async fn hash(settings: &Settings, password: Zeroizing<String>) -> Result<String> {
    let params = settings.password_params()?;
    tokio::task::spawn_blocking(move || {
        let h = PasswordHashing::new(params, &OsRandom)
            .map_err(|e| anyhow!("password hashing: {e}"))?;
        h.hash(&password, &OsRandom)
            .map(|p| p.as_str().to_owned())
            .map_err(|e| anyhow!("password hashing: {e}"))
    })
    .await?
}

async fn user(settings: &Settings, inst: &Installation, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Create(CreateUser {
            tenant,
            email,
            role,
            display_name,
            password_stdin: _,
        }) => {
            let t = inst
                .store
                .find_tenant(&tenant)
                .await?
                .ok_or_else(|| anyhow!("no company with slug or id {tenant:?}"))?;
            let email = Email::parse(&email)?;
            let owner = inst.store.domain_owner(email.domain()).await?;
            ward_core::domain::may_use_domain(&t.id, owner.as_ref())?;
            let role = Role::parse(&role)?;
            let display_name = match display_name {
                Some(n) => check_display_name(&n)?,
                None => email
                    .as_str()
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            };
            let password = read_password_stdin()?;
            check_new_password(&password, email.as_str())?;
            let phc = hash(settings, password).await?;
            let now = bootstrap::now();
            let u = User {
                id: UserId::from_random(random16()?),
                tenant_id: t.id.clone(),
                email,
                display_name,
                role,
                disabled: false,
                created_at: now,
                updated_at: now,
            };
            let e = event(Some(&t.id), actions::USER_CREATED)?
                .target("user", u.id.to_string())
                .details(json!({ "email": u.email.as_str(), "role": role.as_str() }));
            match inst.store.create_user(&u, Some(&phc), &e).await {
                Ok(()) => {}
                Err(StoreError::Conflict(Conflict::EmailTaken)) => {
                    bail!("a user with email {} already exists", u.email.as_str())
                }
                Err(e) => return Err(e.into()),
            }
            println!(
                "created user {} ({}) in {} id {}",
                u.email.as_str(),
                role.as_str(),
                t.slug,
                u.id
            );
            Ok(())
        }
        UserCommand::List { tenant } => {
            let t = inst
                .store
                .find_tenant(&tenant)
                .await?
                .ok_or_else(|| anyhow!("no company with slug or id {tenant:?}"))?;
            for u in inst.store.list_users(&t.id).await? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{}",
                    u.id,
                    u.email.as_str(),
                    u.role.as_str(),
                    status
                );
            }
            Ok(())
        }
        UserCommand::ResetPassword {
            email,
            password_stdin: _,
        } => {
            let email = Email::parse(&email)?;
            let creds = inst
                .store
                .find_user_by_email(&email)
                .await?
                .ok_or_else(|| anyhow!("no user with email {}", email.as_str()))?;
            let password = read_password_stdin()?;
            check_new_password(&password, email.as_str())?;
            let phc = hash(settings, password).await?;
            let e = event(Some(&creds.user.tenant_id), actions::USER_PASSWORD_RESET)?
                .target("user", creds.user.id.to_string())
                .details(json!({ "by": "operator", "sessions_revoked": true }));
            inst.store
                .set_password(&creds.user.id, &phc, bootstrap::now(), &e)
                .await?;
            println!(
                "password reset for {}; their sessions are revoked",
                email.as_str()
            );
            Ok(())
        }
        UserCommand::Disable { email } => {
            let email = Email::parse(&email)?;
            let creds = inst
                .store
                .find_user_by_email(&email)
                .await?
                .ok_or_else(|| anyhow!("no user with email {}", email.as_str()))?;
            let u = creds.user;
            let e = event(Some(&u.tenant_id), actions::USER_DISABLED)?
                .target("user", u.id.to_string())
                .details(json!({ "disabled": true }));
            let change = UserChange {
                disabled: Some(true),
                ..Default::default()
            };
            match inst
                .store
                .update_user(&u.tenant_id, &u.id, &change, bootstrap::now(), &e)
                .await?
            {
                UpdateOutcome::Updated {
                    sessions_revoked, ..
                } => {
                    println!(
                        "disabled {}; revoked {sessions_revoked} session(s)",
                        email.as_str()
                    );
                    Ok(())
                }
                UpdateOutcome::NotFound => bail!("no user with email {}", email.as_str()),
                UpdateOutcome::LastAdmin => {
                    bail!(
                        "refusing to disable the company's last enabled Admin; create another Admin first"
                    )
                }
            }
        }
        UserCommand::LinkSso {
            email,
            provider,
            subject,
        } => {
            let email = Email::parse(&email)?;
            let u = inst
                .store
                .find_user_by_email(&email)
                .await?
                .ok_or_else(|| anyhow!("no user with email {}", email.as_str()))?
                .user;
            let subject = subject.trim();
            if subject.is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
                bail!("--subject must be 1 to 255 characters without control characters");
            }
            let p = inst
                .store
                .list_sso_providers(Some(&u.tenant_id))
                .await?
                .into_iter()
                .map(|p| p.provider)
                .find(|p| p.name == provider || p.id.as_str() == provider)
                .ok_or_else(|| anyhow!("the user's company has no provider {provider:?}"))?;
            let identity = ward_store::ExternalIdentity {
                provider_id: p.id.clone(),
                subject: subject.to_owned(),
                tenant_id: u.tenant_id.clone(),
                user_id: u.id.clone(),
                linked_by: "operator",
                created_at: bootstrap::now(),
            };
            let e = event(Some(&u.tenant_id), actions::SSO_IDENTITY_LINKED)?
                .target("user", u.id.to_string())
                .details(json!({ "provider": p.name, "provider_id": p.id.to_string(),
                    "subject": subject, "linked_by": "operator" }));
            match inst.store.link_identity(&identity, &e).await {
                Ok(()) => {
                    println!(
                        "linked {} to {} (subject {subject})",
                        email.as_str(),
                        p.name
                    );
                    Ok(())
                }
                Err(StoreError::Conflict(Conflict::IdentityLinked)) => bail!(
                    "this subject is already linked to an account, or the account to {}",
                    p.name
                ),
                Err(e) => Err(e.into()),
            }
        }
    }
}

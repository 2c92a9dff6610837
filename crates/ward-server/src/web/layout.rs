//! The page layout: head with the hashed assets, navigation by role, flash
//! messages, and the error page.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use ward_core::Permission;

use super::{Flash, SCRIPT_PATH, STYLE_PATH};
use crate::extract::Principal;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Rules,
    Reviews,
    Account,
    Users,
    Security,
    Audit,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Ward" }
            link rel="stylesheet" href=(STYLE_PATH.as_str());
            script src=(SCRIPT_PATH.as_str()) defer {}
        }
    }
}

/// Navigation shows only what the role may open (the routes check again).
fn nav(principal: &Principal, current: Section) -> Markup {
    let entries = [
        (
            Section::Rules,
            "/rules",
            "Rules",
            Permission::ReadWorkObjects,
        ),
        (
            Section::Reviews,
            "/reviews",
            "Reviews",
            Permission::ReadWorkObjects,
        ),
        (
            Section::Account,
            "/account",
            "Account",
            Permission::ReadOwnAccount,
        ),
        (
            Section::Users,
            "/admin/users",
            "Users",
            Permission::ManageUsers,
        ),
        (
            Section::Security,
            "/admin/security",
            "Security",
            Permission::ManageSettings,
        ),
        (
            Section::Audit,
            "/audit",
            "Audit log",
            Permission::ReadAuditLog,
        ),
    ];
    html! {
        nav aria-label="Main" {
            ul {
                @for (section, href, label, permission) in entries {
                    @if principal.role.allows(permission) {
                        li {
                            @if section == current {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn flash_box(flash: Option<&Flash>) -> Markup {
    html! {
        @if let Some(f) = flash {
            @if f.error {
                div.flash.error role="alert" { (f.text) }
            } @else {
                div.flash.info role="status" { (f.text) }
            }
        }
    }
}

/// A page for a signed-in user.
pub(crate) fn page(
    title: &str,
    principal: &Principal,
    current: Section,
    flash: Option<&Flash>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a href="/" { strong { "Ward" } }
                    (nav(principal, current))
                    div.who {
                        span { (principal.email) " (" (principal.role.as_str()) ")" }
                        form method="post" action="/logout" {
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    (flash_box(flash))
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page for someone not signed in (sign-in, second factor, errors).
pub(crate) fn bare(title: &str, flash: Option<&Flash>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a href="/" { strong { "Ward" } } }
                main #main.signin tabindex="-1" {
                    (flash_box(flash))
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// 403, 404, 500 and the rest: the status and the problem's safe explanation.
pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Markup {
    let heading = if title.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        title.to_owned()
    };
    bare(
        &heading,
        None,
        html! {
            p { (detail) }
            p { a href="/" { "Back to Ward" } }
        },
    )
}

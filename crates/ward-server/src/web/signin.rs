//! The sign-in page: password (then a passkey, when the user has one) or a
//! passkey alone; and sign-out.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::layout;
use super::{Flash, clear_flash, read_flash, redirect_with};
use crate::AppState;
use crate::extract::{Principal, RequestMeta};
use crate::routes::auth::{PasswordSignIn, session_cookie_for, sign_in_with_password};

fn passkey_error_box() -> Markup {
    html! { div #passkey-error.flash.error role="alert" tabindex="-1" hidden {} }
}

pub(crate) async fn page(headers: HeaderMap) -> Response {
    let flash = read_flash(&headers);
    let body = html! {
        form method="post" action="/login" {
            label for="email" { "Email" }
            input #email type="email" name="email" autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            p { button type="submit" { "Sign in" } }
        }
        h2 { "Or" }
        (passkey_error_box())
        p { button.secondary type="button" data-passkey-signin { "Sign in with a passkey" } }
        form method="post" action="/sso" {
            label for="sso-email" { "Single sign-on: your work email" }
            input #sso-email type="email" name="email" autocomplete="username";
            p { button.secondary type="submit" { "Continue with single sign-on" } }
        }
    };
    let mut r = layout::bare("Sign in", flash.as_ref(), body).into_response();
    if flash.is_some() {
        r.headers_mut().append(header::SET_COOKIE, clear_flash());
    }
    r
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    email: String,
    password: String,
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    meta: RequestMeta,
    Form(form): Form<SignInForm>,
) -> Response {
    let SignInForm { email, password } = form;
    match sign_in_with_password(&state, &meta, &email, Zeroizing::new(password)).await {
        Ok(PasswordSignIn::Complete { session, .. }) => {
            match session_cookie_for(&state, &session) {
                Ok(cookie) => {
                    let mut r = Redirect::to("/account").into_response();
                    r.headers_mut().append(header::SET_COOKIE, cookie);
                    r
                }
                Err(e) => e.into_response(),
            }
        }
        Ok(PasswordSignIn::SecondFactor { options, cookie }) => {
            let options = serde_json::to_string(&options).unwrap_or_default();
            let body = html! {
                p { "Your password is correct. Confirm with one of your passkeys to finish signing in." }
                (passkey_error_box())
                p { button type="button" data-passkey-second-factor data-options=(options) autofocus { "Use my passkey" } }
                p { a href="/login" { "Start again" } }
            };
            let mut r = layout::bare("Confirm with your passkey", None, body).into_response();
            r.headers_mut().append(header::SET_COOKIE, cookie);
            r
        }
        Err(e) => redirect_with(
            "/login",
            Flash {
                error: true,
                text: e.detail,
            },
        ),
    }
}

pub(crate) async fn logout(
    state: State<AppState>,
    meta: RequestMeta,
    principal: Principal,
) -> Response {
    match crate::routes::auth::logout(state, meta, principal).await {
        Ok(resp) => {
            let mut r = redirect_with(
                "/login",
                Flash {
                    error: false,
                    text: "You are signed out.".to_owned(),
                },
            );
            if let Some(c) = resp.headers().get(header::SET_COOKIE) {
                r.headers_mut().append(header::SET_COOKIE, c.clone());
            }
            r
        }
        Err(e) => e.into_response(),
    }
}

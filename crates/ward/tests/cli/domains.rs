//! `ward tenant domain` and `ward user link-sso`: the operator's side of email
//! domain ownership and identity links (issue 15, items 1 and 2).

use ward_store::Backend;

use super::{Env, ok, one_line_error};

ward_store::on_both_backends!(operator_owns_domains_and_links_identities);

async fn operator_owns_domains_and_links_identities(backend: Backend) {
    let env = Env::new(backend).await;
    ok(&env.run(&["tenant", "create", "--name", "Alpha"]));
    ok(&env.run(&["tenant", "create", "--name", "Beta"]));
    let out = ok(&env.run(&[
        "tenant",
        "domain",
        "add",
        "--tenant",
        "alpha",
        "Alpha.Example",
    ]));
    assert!(out.contains("ward-verification="), "{out}");
    // Beta may claim it too; the first to verify holds it.
    ok(&env.run(&[
        "tenant",
        "domain",
        "add",
        "--tenant",
        "beta",
        "alpha.example",
    ]));
    let line = one_line_error(&env.run(&[
        "tenant",
        "domain",
        "add",
        "--tenant",
        "alpha",
        "alpha.example",
    ]));
    assert!(line.contains("already claims"), "{line}");
    ok(&env.run(&[
        "tenant",
        "domain",
        "verify",
        "--tenant",
        "alpha",
        "alpha.example",
    ]));
    let line = one_line_error(&env.run(&[
        "tenant",
        "domain",
        "verify",
        "--tenant",
        "beta",
        "alpha.example",
    ]));
    assert!(line.contains("another company holds"), "{line}");
    assert!(
        ok(&env.run(&["tenant", "domain", "list", "--tenant", "alpha"]))
            .contains("alpha.example\tverified")
    );
    // Beta cannot create addresses on Alpha's domain, even as the operator.
    let out = env.run_with_stdin(
        &[
            "user",
            "create",
            "--tenant",
            "beta",
            "--email",
            "cto@alpha.example",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "correct horse battery staple",
    );
    assert!(one_line_error(&out).contains("belongs to another company"));
    let line =
        one_line_error(&env.run(&["tenant", "domain", "verify", "--tenant", "alpha", "nope"]));
    assert!(line.contains("domain"), "{line}");
    let line = one_line_error(&env.run(&[
        "tenant",
        "domain",
        "remove",
        "--tenant",
        "beta",
        "other.example",
    ]));
    assert!(line.contains("no claim"), "{line}");
    ok(&env.run(&[
        "tenant",
        "domain",
        "remove",
        "--tenant",
        "alpha",
        "alpha.example",
    ]));
    ok(&env.run(&[
        "tenant",
        "domain",
        "verify",
        "--tenant",
        "beta",
        "alpha.example",
    ]));

    // Now Beta holds it: Alpha cannot create addresses there.
    let out = env.run_with_stdin(
        &[
            "user",
            "create",
            "--tenant",
            "alpha",
            "--email",
            "bob@alpha.example",
            "--role",
            "user",
            "--password-stdin",
        ],
        "correct horse battery staple",
    );
    assert!(one_line_error(&out).contains("belongs to another company"));
    // Linking needs an account and a provider of its company.
    ok(&env.run_with_stdin(
        &[
            "user",
            "create",
            "--tenant",
            "beta",
            "--email",
            "bob@alpha.example",
            "--role",
            "user",
            "--password-stdin",
        ],
        "correct horse battery staple",
    ));
    let line = one_line_error(&env.run(&[
        "user",
        "link-sso",
        "--email",
        "bob@alpha.example",
        "--provider",
        "Okta",
        "--subject",
        "00u1",
    ]));
    assert!(line.contains("no provider"), "{line}");
}

//! `cargo bench -p ward-crypto --bench envelope`: field encryption cost on one core,
//! step by step, beside raw AES-256-GCM on the same 256 bytes in the same run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ward_crypto::aead::bench_raw_seal_open;
use ward_crypto::envelope::{self, FieldContext};
use ward_crypto::{
    InstallationSalt, MasterCredentialKey, MasterSecret, OsRandom, TenantKey, WrapContext,
};

/// Runs `f` repeatedly for about `budget`; returns operations per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..1000 {
        f();
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..256 {
            f();
        }
        n += 256;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let budget = Duration::from_secs(2);
    let plaintext = [0x5au8; 256];
    let key = [7u8; 32];
    let nonce = [9u8; 12];
    let master = MasterSecret::generate(&OsRandom).expect("secret");
    let salt = InstallationSalt::generate(&OsRandom).expect("salt");
    let mck = MasterCredentialKey::derive(&master, &salt);
    let tenant_key = TenantKey::generate(&OsRandom).expect("key");
    let wctx = WrapContext {
        tenant_id: "00000000-0000-4000-8000-000000000001",
        key_version: 1,
        master_version: 1,
    };
    let wrapped = mck.wrap(&tenant_key, wctx, &OsRandom).expect("wrap");
    let fctx = FieldContext {
        tenant_id: wctx.tenant_id,
        entity: "connection",
        field: "credentials",
        row_id: "row",
    };
    let sealed = envelope::seal(&tenant_key, 1, fctx, &plaintext, &OsRandom).expect("seal");

    let raw = rate(budget, || {
        black_box(bench_raw_seal_open(
            black_box(&key),
            &nonce,
            black_box(&plaintext),
        ));
    });
    let unwrap = rate(budget, || {
        black_box(mck.unwrap(black_box(&wrapped), wctx).expect("unwrap"));
    });
    let seal_only = rate(budget, || {
        black_box(
            envelope::seal(&tenant_key, 1, fctx, black_box(&plaintext), &OsRandom).expect("seal"),
        );
    });
    let open_only = rate(budget, || {
        black_box(envelope::open(&tenant_key, fctx, black_box(&sealed)).expect("open"));
    });
    let full = rate(budget, || {
        let k = mck.unwrap(&wrapped, wctx).expect("unwrap");
        let s = envelope::seal(&k, 1, fctx, black_box(&plaintext), &OsRandom).expect("seal");
        let k2 = mck.unwrap(&wrapped, wctx).expect("unwrap");
        black_box(envelope::open(&k2, fctx, &s).expect("open"));
    });
    let us = |ops: f64| 1e6 / ops;
    println!("\n## Field encryption, 256-byte value, one core\n");
    println!("| operation | ops/s | µs/op | relative to raw AES-256-GCM |");
    println!("|---|---|---|---|");
    println!(
        "| baseline: raw AES-256-GCM seal + open (fixed key and nonce) | {raw:.0} | {:.2} | 100% |",
        us(raw)
    );
    println!(
        "| tenant key unwrap (AES-256-GCM of 32 bytes under the master credential key) | {unwrap:.0} | {:.2} | — |",
        us(unwrap)
    );
    println!(
        "| envelope seal (random salt + nonce, HKDF one-time key, AES-256-GCM) | {seal_only:.0} | {:.2} | — |",
        us(seal_only)
    );
    println!(
        "| envelope open (HKDF one-time key, AES-256-GCM) | {open_only:.0} | {:.2} | — |",
        us(open_only)
    );
    println!(
        "| full: unwrap + seal + unwrap + open (per-operation unwrap) | {full:.0} | {:.2} | {:.0}% |",
        us(full),
        100.0 * full / raw
    );
}

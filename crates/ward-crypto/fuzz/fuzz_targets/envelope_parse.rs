//! Fuzz target: the envelope parser and decryption must never panic on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_crypto::envelope::{FieldContext, open, parse_header};
use ward_crypto::TenantKey;

fuzz_target!(|data: &[u8]| {
    let _ = parse_header(data);
    let key = TenantKey::danger_from_bytes([7u8; 32]);
    let ctx = FieldContext { tenant_id: "t", entity: "e", field: "f", row_id: "r" };
    let _ = open(&key, ctx, data);
});

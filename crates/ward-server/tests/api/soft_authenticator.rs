//! A software WebAuthn authenticator for API tests: ES256 key, "none"
//! attestation, a signature counter, and knobs to misbehave (wrong origin, wrong
//! RP id, counter going backwards). Written from the WebAuthn Level 3
//! specification (§6.1 authenticator data, §6.5 attestation, §7 RP operations);
//! the browser suite uses Chromium's own virtual authenticator instead.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::{Signature, SigningKey, signature::Signer};
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const ORIGIN: &str = "http://localhost:8080";
pub const RP_ID: &str = "localhost";

pub struct SoftAuthenticator {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    pub counter: u32,
    user_handle: Option<Vec<u8>>,
    pub origin: String,
    pub rp_id: String,
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn cbor_map(entries: Vec<(Cbor, Cbor)>) -> Cbor {
    Cbor::Map(entries.into_iter().collect())
}

impl SoftAuthenticator {
    pub fn new() -> Self {
        let seed: [u8; 32] = {
            let a = crate::harness::random16();
            let b = crate::harness::random16();
            let mut s = [0u8; 32];
            s[..16].copy_from_slice(&a);
            s[16..].copy_from_slice(&b);
            s
        };
        Self {
            key: SigningKey::from_slice(&seed).expect("p-256 key"),
            credential_id: crate::harness::random16().to_vec(),
            counter: 0,
            user_handle: None,
            origin: ORIGIN.to_owned(),
            rp_id: RP_ID.to_owned(),
        }
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .expect("client data")
    }

    fn auth_data(&self, attested: Option<Vec<u8>>) -> Vec<u8> {
        let mut d = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        // UP | UV, and AT when a credential is attached.
        let flags = if attested.is_some() { 0x45 } else { 0x05 };
        d.push(flags);
        d.extend_from_slice(&self.counter.to_be_bytes());
        if let Some(a) = attested {
            d.extend_from_slice(&a);
        }
        d
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let (x, y) = (bytes[1..33].to_vec(), bytes[33..65].to_vec());
        serde_cbor_2::to_vec(&cbor_map(vec![
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(x)),
            (Cbor::Integer(-3), Cbor::Bytes(y)),
        ]))
        .expect("cose")
    }

    /// Answers `navigator.credentials.create` options (the server's JSON).
    pub fn register(&mut self, options: &Value) -> Value {
        let user_id = options["publicKey"]["user"]["id"]
            .as_str()
            .expect("user id");
        self.user_handle = Some(URL_SAFE_NO_PAD.decode(user_id).expect("user id b64"));
        let mut attested = vec![0u8; 16];
        attested.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        attested.extend_from_slice(&self.credential_id);
        attested.extend_from_slice(&self.cose_key());
        let auth_data = self.auth_data(Some(attested));
        let att = serde_cbor_2::to_vec(&cbor_map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), cbor_map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]))
        .expect("attestation");
        let client_data = self.client_data("webauthn.create", options);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&att),
                "clientDataJSON": b64(&client_data),
            },
            "clientExtensionResults": {},
        })
    }

    /// Answers `navigator.credentials.get` options, counting up first.
    pub fn assert(&mut self, options: &Value) -> Value {
        self.counter += 1;
        let auth_data = self.auth_data(None);
        let client_data = self.client_data("webauthn.get", options);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let sig: Signature = self.key.sign(&signed);
        let der = sig.to_der();
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(der.as_bytes()),
                "userHandle": self.user_handle.as_deref().map(b64),
            },
            "clientExtensionResults": {},
        })
    }
}

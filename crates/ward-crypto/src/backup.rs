//! Encrypted backup archives: an authenticated, chunked AES-256-GCM container
//! (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár, 2015)
//! under the "backup" purpose key.
//!
//! ```text
//! "WARDBAK1" ‖ installation salt (32) ‖ master version (4, BE) ‖ key check (32) ‖ nonce prefix (7)
//! then chunks: length (4, BE) ‖ AES-256-GCM(chunk) with nonce = prefix ‖ counter (4, BE) ‖ last (1)
//! ```
//!
//! The header is the AAD of every chunk. The counter orders chunks and the `last`
//! flag marks the final one, so reordering, dropping, truncating or appending
//! chunks, or flipping any bit, fails authentication. The header carries the
//! installation salt (not secret) so a restore elsewhere can derive the key from
//! the master secret alone, and the key check so a wrong secret is named as such.

use zeroize::Zeroizing;

use crate::aead::{PreparedKey, TAG_LEN};
use crate::{InstallationSalt, KeyCheckValue, MasterSecret, Purpose, SecureRandom};

const MAGIC: &[u8; 8] = b"WARDBAK1";
const PREFIX_LEN: usize = 7;
pub const HEADER_LEN: usize = 8 + 32 + 4 + 32 + PREFIX_LEN;
const CHUNK: usize = 64 * 1024;

/// What a backup header says.
#[derive(Debug, Clone)]
pub struct BackupHeader {
    pub salt: InstallationSalt,
    pub master_version: u32,
    key_check: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackupError {
    #[error("not a Ward backup (bad magic or truncated header)")]
    NotABackup,
    #[error("the configured master secret is not the one this backup was made with")]
    WrongSecret,
    #[error("the backup is damaged or was altered (chunk {0} failed authentication)")]
    Tampered(u32),
    #[error("the backup is truncated (its final chunk is missing)")]
    Truncated,
    #[error("randomness failed")]
    Randomness,
}

fn key_for(master: &MasterSecret, salt: &InstallationSalt) -> PreparedKey {
    let k = master.derive(salt, Purpose::Backup);
    PreparedKey::new(k.bytes()).expect("a 32-byte key is always a valid AES-256 key")
}

fn nonce(prefix: &[u8], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Encrypts `plaintext` into an archive.
pub fn seal_backup(
    master: &MasterSecret,
    salt: &InstallationSalt,
    master_version: u32,
    plaintext: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, BackupError> {
    let mut prefix = [0u8; PREFIX_LEN];
    rng.fill(&mut prefix).map_err(|_| BackupError::Randomness)?;
    let mut out =
        Vec::with_capacity(HEADER_LEN + plaintext.len() + plaintext.len() / CHUNK * 20 + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(salt.as_bytes());
    out.extend_from_slice(&master_version.to_be_bytes());
    out.extend_from_slice(master.key_check(salt).as_bytes());
    out.extend_from_slice(&prefix);
    let header = out.clone();
    let key = key_for(master, salt);
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[][..]]
    } else {
        plaintext.chunks(CHUNK).collect()
    };
    let count = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let counter = u32::try_from(i).map_err(|_| BackupError::NotABackup)?;
        let ct = key
            .seal(&nonce(&prefix, counter, i + 1 == count), chunk, &header)
            .ok_or(BackupError::Randomness)?;
        let len = u32::try_from(ct.len()).map_err(|_| BackupError::NotABackup)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&ct);
    }
    Ok(out)
}

/// Reads the header without decrypting.
pub fn read_header(archive: &[u8]) -> Result<BackupHeader, BackupError> {
    if archive.len() < HEADER_LEN || &archive[..8] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    let salt =
        InstallationSalt::from_bytes(&archive[8..40]).map_err(|_| BackupError::NotABackup)?;
    let mut v = [0u8; 4];
    v.copy_from_slice(&archive[40..44]);
    Ok(BackupHeader {
        salt,
        master_version: u32::from_be_bytes(v),
        key_check: archive[44..76].to_vec(),
    })
}

/// Decrypts an archive, checking every chunk, their order and completeness.
pub fn open_backup(
    master: &MasterSecret,
    archive: &[u8],
) -> Result<Zeroizing<Vec<u8>>, BackupError> {
    let header = read_header(archive)?;
    let stored = KeyCheckValue::from_bytes(&header.key_check).ok_or(BackupError::NotABackup)?;
    if !master.key_check(&header.salt).matches(&stored) {
        return Err(BackupError::WrongSecret);
    }
    let key = key_for(master, &header.salt);
    let aad = &archive[..HEADER_LEN];
    let prefix = &archive[HEADER_LEN - PREFIX_LEN..HEADER_LEN];
    let mut out = Zeroizing::new(Vec::with_capacity(archive.len()));
    let mut rest = &archive[HEADER_LEN..];
    let mut counter: u32 = 0;
    loop {
        if rest.len() < 4 {
            return Err(BackupError::Truncated);
        }
        let mut l = [0u8; 4];
        l.copy_from_slice(&rest[..4]);
        let len =
            usize::try_from(u32::from_be_bytes(l)).map_err(|_| BackupError::Tampered(counter))?;
        if len < TAG_LEN || rest.len() < 4 + len {
            return Err(BackupError::Truncated);
        }
        let ct = &rest[4..4 + len];
        rest = &rest[4 + len..];
        let last = rest.is_empty();
        let pt = key
            .open(&nonce(prefix, counter, last), ct, aad)
            .ok_or(BackupError::Tampered(counter))?;
        out.extend_from_slice(&pt);
        if last {
            return Ok(out);
        }
        counter = counter
            .checked_add(1)
            .ok_or(BackupError::Tampered(counter))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsRandom;

    fn secret(b: u8) -> MasterSecret {
        MasterSecret::from_base64(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [b; 32],
        ))
        .expect("secret")
    }

    #[test]
    fn round_trip_and_every_tampering() {
        let salt = InstallationSalt::from_bytes(&[3; 32]).expect("salt");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let archive = seal_backup(&secret(1), &salt, 1, &data, &OsRandom).expect("seal");
        assert_eq!(
            open_backup(&secret(1), &archive).expect("open").as_slice(),
            data.as_slice()
        );
        assert_eq!(
            open_backup(&secret(2), &archive).err(),
            Some(BackupError::WrongSecret)
        );
        for i in [
            0usize,
            9,
            50,
            HEADER_LEN + 2,
            HEADER_LEN + 100,
            archive.len() / 2,
            archive.len() - 1,
        ] {
            let mut bad = archive.clone();
            bad[i] ^= 0x01;
            assert!(open_backup(&secret(1), &bad).is_err(), "flip at {i}");
        }
        // Truncation at a chunk boundary (drop the final chunk) is detected.
        let first_len =
            u32::from_be_bytes(archive[HEADER_LEN..HEADER_LEN + 4].try_into().expect("4")) as usize;
        let cut = &archive[..HEADER_LEN + 4 + first_len];
        assert!(open_backup(&secret(1), cut).is_err());
        assert!(open_backup(&secret(1), &archive[..archive.len() - 3]).is_err());
        assert_eq!(
            open_backup(&secret(1), b"not a backup").err(),
            Some(BackupError::NotABackup)
        );
        let empty = seal_backup(&secret(1), &salt, 1, b"", &OsRandom).expect("seal");
        assert!(open_backup(&secret(1), &empty).expect("open").is_empty());
    }
}

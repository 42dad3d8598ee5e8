//! MISP's hashes export (`returnFormat: hashes`).
//!
//! Facts from MISP `app/Lib/Export/HashesExport.php`:
//! - Simple hash types print their value: `md5`, `sha1`, `sha256`, `sha224`, `sha384`, `sha512`,
//!   `sha512/224`, `sha512/256`, `sha3-224`, `sha3-256`, `sha3-384`, `sha3-512`, `ssdeep`,
//!   `imphash`, `tlsh`, `x509-fingerprint-sha1`, `x509-fingerprint-md5`,
//!   `x509-fingerprint-sha256`, `pehash`, `authentihash`, `impfuzzy`.
//! - Composite types print the part after the `|`: `malware-sample`, `filename|md5`,
//!   `filename|sha1`, `filename|sha256`, `filename|sha224`, `filename|sha512`,
//!   `filename|sha512/224`, `filename|sha512/256`, `filename|sha3-224`, `filename|sha3-256`,
//!   `filename|sha3-384`, `filename|sha3-512`, `filename|ssdeep`, `filename|imphash`,
//!   `filename|tlsh`, `filename|pehash`, `filename|authentihash`, `filename|impfuzzy`.
//! - Other types print nothing. Values are not de-duplicated.
//! - Lines are separated by `\n` and the footer is `\n`: `"h1\nh2\n"`, or `"\n"` when empty.
//! - The format is restrictive.

use crate::record::{Attribute, Event};

/// Types whose whole value is a hash.
pub const SIMPLE_TYPES: [&str; 21] = [
    "md5",
    "sha1",
    "sha256",
    "sha224",
    "sha384",
    "sha512",
    "sha512/224",
    "sha512/256",
    "sha3-224",
    "sha3-256",
    "sha3-384",
    "sha3-512",
    "ssdeep",
    "imphash",
    "tlsh",
    "x509-fingerprint-sha1",
    "x509-fingerprint-md5",
    "x509-fingerprint-sha256",
    "pehash",
    "authentihash",
    "impfuzzy",
];

/// Composite types whose second half is a hash.
pub const COMPOSITE_TYPES: [&str; 18] = [
    "malware-sample",
    "filename|md5",
    "filename|sha1",
    "filename|sha256",
    "filename|sha224",
    "filename|sha512",
    "filename|sha512/224",
    "filename|sha512/256",
    "filename|sha3-224",
    "filename|sha3-256",
    "filename|sha3-384",
    "filename|sha3-512",
    "filename|ssdeep",
    "filename|imphash",
    "filename|tlsh",
    "filename|pehash",
    "filename|authentihash",
    "filename|impfuzzy",
];

/// The hash an attribute contributes, if any.
pub fn hash_of(attribute: &Attribute) -> Option<&str> {
    let kind = attribute.attr_type.as_str();
    if COMPOSITE_TYPES.contains(&kind) {
        Some(&attribute.value2)
    } else if SIMPLE_TYPES.contains(&kind) {
        Some(&attribute.value1)
    } else {
        None
    }
}

/// Streams MISP's hashes export.
#[derive(Debug, Clone, Default)]
pub struct HashesWriter {
    written: bool,
}

impl HashesWriter {
    /// A writer with nothing written yet.
    pub fn new() -> HashesWriter {
        HashesWriter::default()
    }

    /// The hashes export has no header.
    pub fn begin(&mut self, _out: &mut String) {}

    /// Writes the attribute's hash, if it has one.
    pub fn push(&mut self, _event: &Event, attribute: &Attribute, out: &mut String) {
        if let Some(hash) = hash_of(attribute) {
            if self.written {
                out.push('\n');
            }
            out.push_str(hash);
            self.written = true;
        }
    }

    /// Writes MISP's footer (`\n`).
    pub fn finish(&mut self, out: &mut String) {
        out.push('\n');
    }
}

//! The journal's record checksum, the same function as `journal.schema.record_crc` in Python: CRC-32
//! (zlib's polynomial) over a header `>IQQB` (partition, seq, epoch, length of the kind's name), the
//! kind's name and the payload. Covering where a record lives makes a moved or renumbered row fail too.
//! Recovery checks every record with it (`python::check_record_rows`), so it runs per record read.

/// The CRC of one journal record; a kind's name is at most 255 bytes (every kind's is far shorter).
pub fn record_crc(partition: u32, seq: u64, epoch: u64, kind: &[u8], payload: &[u8]) -> u32 {
    let mut header = [0u8; 21];
    header[..4].copy_from_slice(&partition.to_be_bytes());
    header[4..12].copy_from_slice(&seq.to_be_bytes());
    header[12..20].copy_from_slice(&epoch.to_be_bytes());
    header[20] = u8::try_from(kind.len()).expect("a record kind's name is at most 255 bytes");
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header);
    hasher.update(kind);
    hasher.update(payload);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::record_crc;

    #[test]
    fn matches_zlib_over_the_concatenation() {
        // zlib.crc32(struct.pack(">IQQB", 3, 7, 2, 9) + b"lease_end" + b"\x01\x02"), computed in Python
        assert_eq!(record_crc(3, 7, 2, b"lease_end", &[1, 2]), 0x3a61_6de0);
    }

    #[test]
    fn every_field_changes_it() {
        let base = record_crc(1, 2, 3, b"k", b"p");
        assert_ne!(base, record_crc(2, 2, 3, b"k", b"p"));
        assert_ne!(base, record_crc(1, 3, 3, b"k", b"p"));
        assert_ne!(base, record_crc(1, 2, 4, b"k", b"p"));
        assert_ne!(base, record_crc(1, 2, 3, b"j", b"p"));
        assert_ne!(base, record_crc(1, 2, 3, b"k", b"q"));
    }
}

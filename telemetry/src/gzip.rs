//! Gzip (RFC 1952) for request bodies, with the compressor's state reused.
//!
//! A deflate compressor holds a few hundred KiB of tables (window, hash
//! chains, pending output). Created per request, as `flate2`'s
//! `GzEncoder::new` does, those are fresh large allocations — the allocator
//! maps them straight from the kernel — so every request paid page faults
//! and zeroed pages for them, and unmapped them again. Here the compressors
//! are kept (a few, one per request being encoded at once) and reset
//! between bodies. They write raw deflate, and the gzip wrapper (header,
//! CRC-32, length) is written here: the same deflate stream as `flate2`'s
//! `GzEncoder`, with the CRC-32 from `crc32fast`, which is about four times
//! faster on these bodies than the checksum the compressor computes while it
//! copies its input (about a fifth of the gzip time of a span batch).

use std::sync::{Mutex, PoisonError};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Most idle compressors kept (requests encoded at the same time).
const KEPT: usize = 4;

static IDLE: Mutex<Vec<Compress>> = Mutex::new(Vec::new());

/// Deflate window: 32 KiB, the most gzip allows.
const WINDOW_BITS: u8 = 15;

/// The gzip header zlib writes: magic, deflate, no flags, no time, extra
/// flags 4 (fastest level), OS 3 (Unix).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3];

/// Gzips the concatenation of `parts` at the fastest level.
pub(crate) fn gzip(parts: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let mut compress = IDLE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .unwrap_or_else(|| Compress::new_with_window_bits(Compression::fast(), false, WINDOW_BITS));
    compress.reset();
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len / 3 + 64);
    out.extend_from_slice(&HEADER);
    let mut crc = crc32fast::Hasher::new();
    let mut result = Ok(());
    for part in parts {
        crc.update(part);
        result = deflate(&mut compress, part, &mut out, FlushCompress::None);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = deflate(&mut compress, &[], &mut out, FlushCompress::Finish);
    }
    // Trailer: CRC-32 and the input's length modulo 2^32, little-endian.
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    {
        let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEPT {
            idle.push(compress);
        }
    }
    result?;
    Ok(out)
}

/// Feeds `input` to `compress`, appending what it writes to `out` (grown
/// as needed); with `Finish`, until the stream has ended.
fn deflate(
    compress: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> std::io::Result<()> {
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(4096));
        }
        let before = compress.total_in();
        let status = compress
            .compress_vec(input, out, flush)
            .map_err(std::io::Error::other)?;
        let consumed = usize::try_from(compress.total_in() - before).unwrap_or(input.len());
        input = &input[consumed.min(input.len())..];
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => input.is_empty(),
        };
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn gunzip(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("a valid gzip stream");
        out
    }

    #[test]
    fn round_trips_and_is_flate2s_gzip_encoders_stream() {
        // Text that compresses, and bytes that do not (output larger than
        // the first guess of its size: the buffer must grow).
        let text = "span attributes, prompts and replies ".repeat(5_000);
        let noise: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for parts in [
            vec![],
            vec![&b""[..]],
            vec![text.as_bytes()],
            vec![&b"head"[..], text.as_bytes(), &noise[..]],
        ] {
            let whole = parts.concat();
            // Twice: the second body comes from a reset compressor.
            for _ in 0..2 {
                let body = gzip(&parts).unwrap();
                assert_eq!(gunzip(&body), whole);
                let mut reference = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
                reference.write_all(&whole).unwrap();
                let reference = reference.finish().unwrap();
                // The same stream; only the header's OS byte differs (zlib
                // writes Unix, `GzEncoder` "unknown").
                assert_eq!(body.len(), reference.len(), "{} bytes in", whole.len());
                assert_eq!(body[..9], reference[..9], "header");
                assert_eq!(body[10..], reference[10..], "{} bytes in", whole.len());
            }
        }
    }
}

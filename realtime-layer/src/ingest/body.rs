//! Reading a request body within the cap: the bytes on the wire and, for
//! `Content-Encoding: gzip`, the bytes after decompression (a gzip bomb stops at the cap).

use axum::body::Body;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::io::Read;

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Over the cap (on the wire or decompressed).
    TooLarge,
    /// A content encoding other than gzip or identity.
    UnsupportedEncoding(String),
    /// Not valid gzip.
    BadGzip(String),
    /// The connection failed or timed out while the body was read.
    Read(String),
}

/// The body, read and decompressed, at most `cap` bytes either way.
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Body,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e.is_empty() || e == "identity" => false,
        Some(e) if e == "gzip" || e == "x-gzip" => true,
        Some(e) => return Err(BodyError::UnsupportedEncoding(e)),
    };
    // A declared length over the cap is refused before a byte of the body is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let wire = match Limited::new(body, cap).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(BodyError::TooLarge)
        }
        Err(e) => return Err(BodyError::Read(e.to_string())),
    };
    if !gzip {
        return Ok(wire.to_vec());
    }
    gunzip(&wire, cap)
}

/// Decompresses `wire` (one or more gzip members), at most `cap` bytes.
pub(crate) fn gunzip(wire: &[u8], cap: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity((wire.len() * 4).min(cap));
    let mut decoder = flate2::read::MultiGzDecoder::new(wire).take(cap as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| BodyError::BadGzip(e.to_string()))?;
    if out.len() > cap {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_within_the_cap_and_bombs() {
        assert_eq!(gunzip(&gz(b"hello"), 5).unwrap(), b"hello");
        // 64 MB of zeros compress to ~64 KB: stopped at the cap, never inflated whole.
        let bomb = gz(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000);
        assert_eq!(gunzip(&bomb, 1 << 20), Err(BodyError::TooLarge));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(BodyError::BadGzip(_))
        ));
    }
}

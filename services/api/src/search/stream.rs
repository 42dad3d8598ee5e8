//! A response body written by a task while the client reads it: memory stays bounded by one chunk
//! (plus what a format itself must keep) however many rows a search returns.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::future::Future;
use tokio::sync::mpsc;

/// How much text is gathered before it is handed to the connection.
const CHUNK: usize = 64 * 1024;

/// The writing end: append to [`Self::buf`], then [`Self::flush_if_full`].
pub struct Chunks {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: String,
    gone: bool,
}

impl Chunks {
    pub fn buf(&mut self) -> &mut String {
        &mut self.buf
    }

    /// Hands the buffer over when it is large enough. `false` once the client went away (the
    /// producer should stop).
    pub async fn flush_if_full(&mut self) -> bool {
        if self.buf.len() >= CHUNK {
            self.flush().await;
        }
        !self.gone
    }

    async fn flush(&mut self) {
        if self.buf.is_empty() || self.gone {
            return;
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        if self.tx.send(Ok(chunk)).await.is_err() {
            self.gone = true;
        }
    }
}

/// A 200 response whose body `produce` writes. An error after the first bytes cannot change the
/// status any more: it is logged and the body is cut short (the client sees a broken transfer,
/// never a truncated document that looks complete).
pub fn streamed<F, Fut>(headers: HeaderMap, produce: F) -> Response
where
    F: FnOnce(Chunks) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Chunks, ApiError>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let error_tx = tx.clone();
    tokio::spawn(async move {
        match produce(Chunks { tx, buf: String::with_capacity(CHUNK + 4096), gone: false }).await {
            Ok(mut chunks) => chunks.flush().await,
            Err(e) => {
                tracing::error!(error = %e, "search stream failed after the response started");
                let _ = error_tx.send(Err(std::io::Error::other("search failed"))).await;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response.headers_mut().extend(headers);
    response
}

/// Runs `produce` into `out` (an export file): the same bytes a client of [`streamed`] receives.
///
/// # Errors
/// The producer's errors; write errors as [`ApiError::Internal`].
pub async fn to_writer<F, Fut, W>(produce: F, out: &mut W) -> Result<u64, ApiError>
where
    F: FnOnce(Chunks) -> Fut,
    Fut: Future<Output = Result<Chunks, ApiError>>,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let producer = async move {
        let mut chunks = produce(Chunks { tx, buf: String::with_capacity(CHUNK + 4096), gone: false }).await?;
        chunks.flush().await;
        Ok::<(), ApiError>(())
    };
    // `move`: a failed write drops the receiver, which stops the producer.
    let consumer = async move {
        let mut written = 0_u64;
        while let Some(chunk) = rx.recv().await {
            let chunk = chunk.map_err(|e| ApiError::Internal(e.to_string()))?;
            out.write_all(&chunk).await.map_err(|e| ApiError::Internal(format!("writing an export: {e}")))?;
            written += chunk.len() as u64;
        }
        Ok::<u64, ApiError>(written)
    };
    let (produced, written) = tokio::join!(producer, consumer);
    produced?;
    written
}

/// Headers of a search response: content type, result count, MISP's format header and a download
/// file name.
pub fn headers(content_type: &str, count: Option<i64>, format: &str, filename: Option<String>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(c) = count {
        h.insert("X-Result-Count", HeaderValue::from(c));
    }
    if let Ok(v) = HeaderValue::from_str(format) {
        h.insert("X-Response-Format", v);
    }
    if let Some(name) = filename.and_then(|n| HeaderValue::from_str(&format!("attachment; filename=\"{n}\"")).ok()) {
        h.insert(header::CONTENT_DISPOSITION, name);
    }
    h
}

//! Uploads to S3 destinations (and any S3-compatible server), with the
//! `object_store` crate over [`super::object_client`]: one signed PUT for
//! files up to `upload.part_bytes`, a multipart upload above, aborted on
//! any failure so that nothing half-written stays in the bucket.

use object_store::aws::AmazonS3Builder;
use object_store::{Attribute, Attributes, ClientOptions};
use reqwest::header::{HeaderMap, HeaderName};
use serde_json::Value;

use super::context::{Context, Payload, Sent};
use super::object_client::{attribute, header_value, no_retries, object_path, put, Transport};
use super::task::S3;
use super::UploadError;

/// S3 refuses parts under 5 MiB (all but the last).
const S3_MIN_PART: u64 = 5 * 1024 * 1024;
/// S3 accepts at most 10,000 parts.
const S3_MAX_PARTS: u64 = 10_000;

pub async fn send(d: &S3, cx: &Context, file: &Payload) -> Result<Sent, UploadError> {
    // The server's keys go to the server's host (the request's check
    // wrote it into the task; one kept from before may lack it).
    let own_host;
    let d = if d.aws_use_policy && d.s3host.is_none() && !cx.config.aws_s3host.is_empty() {
        own_host = S3 {
            s3host: Some(cx.config.aws_s3host.clone()),
            ..d.clone()
        };
        &own_host
    } else {
        d
    };
    let (key_id, secret) = if d.aws_use_policy {
        (
            cx.config.aws_access_key_id.clone(),
            cx.config.aws_secret_access_key.clone(),
        )
    } else {
        match (&d.aws_access_key_id, &d.aws_secret_access_key) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => {
                return Err(UploadError::Refused(
                    "the S3 destination has no credentials".into(),
                ))
            }
        }
    };
    if key_id.is_empty() || secret.is_empty() {
        return Err(UploadError::Refused(
            "this server has no S3 credentials of its own (upload.aws_access_key_id)".into(),
        ));
    }
    // object_store would panic on a header it cannot build; the request
    // was checked when it arrived, the server's own key is checked here.
    header_value("aws_access_key_id", &key_id)?;

    let (endpoint, region, path_style) = d.endpoint();
    let authority = match endpoint.port() {
        Some(port) => format!("{}:{port}", endpoint.host_str().unwrap_or("")),
        None => endpoint.host_str().unwrap_or("").to_owned(),
    };
    // A bucket name with dots does not match AWS's wildcard certificate
    // as a host name: such buckets are addressed by path, as AWS advises.
    let by_path = path_style || d.bucket.contains('.');
    let endpoint_url = if by_path {
        format!("{}://{authority}", endpoint.scheme())
    } else {
        format!("{}://{}.{authority}", endpoint.scheme(), d.bucket)
    };

    // The ACL is a header object_store has no attribute for: a default
    // header of its client is sent (and signed) on every request of the
    // upload; S3 reads it on PutObject and CreateMultipartUpload.
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-amz-acl"),
        header_value("acl", &d.acl)?,
    );
    let transport = Transport::new(cx, "S3");
    let store = AmazonS3Builder::new()
        .with_bucket_name(&d.bucket)
        .with_region(region)
        .with_endpoint(endpoint_url)
        .with_virtual_hosted_style_request(!by_path)
        .with_allow_http(endpoint.scheme() == "http")
        .with_access_key_id(key_id)
        .with_secret_access_key(secret)
        .with_client_options(ClientOptions::new().with_default_headers(headers))
        .with_retry(no_retries())
        .with_http_connector(transport.clone())
        .build()
        .map_err(|e| UploadError::Refused(format!("S3 destination: {e}")))?;

    let mut attributes = Attributes::new();
    attributes.insert(
        Attribute::ContentType,
        attribute("contenttype", &d.contenttype)?,
    );
    if let Some(v) = &d.contentdisposition {
        attributes.insert(
            Attribute::ContentDisposition,
            attribute("contentdisposition", v)?,
        );
    }
    if let Some(v) = &d.cachecontrol {
        attributes.insert(Attribute::CacheControl, attribute("cachecontrol", v)?);
    }
    if d.reduced_redundancy {
        attributes.insert(Attribute::StorageClass, "REDUCED_REDUNDANCY".into());
    }
    for (k, v) in &d.metadata {
        let name = format!("x-amz-meta-{k}");
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(UploadError::Refused(format!(
                "metadata {k:?} is not a header name"
            )));
        }
        attributes.insert(
            Attribute::Metadata(k.clone().into()),
            attribute("metadata", v)?,
        );
    }

    let path = object_path(&d.filename)?;
    let len = file.bytes.len() as u64;
    let part = cx
        .config
        .part_bytes
        .max(S3_MIN_PART)
        .max(len.div_ceil(S3_MAX_PARTS));
    put(&store, &path, &file.bytes, attributes, part, &transport).await?;

    let mut sent = Sent::new();
    sent.insert("url".into(), Value::String(d.object_url()));
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use serde_json::json;

    use super::*;
    use crate::upload::fake::{context, fake, payload};

    fn destination(addr: SocketAddr) -> S3 {
        serde_json::from_value(json!({
            "bucket": "bkt", "filename": "dir/key.mp4", "s3host": format!("http://{addr}"),
            "aws_access_key_id": "AKID", "aws_secret_access_key": "secret",
            "contenttype": "video/mp4", "metadata": { "campaign": "spring" }
        }))
        .unwrap()
    }

    const MIB: usize = 1024 * 1024;

    #[tokio::test]
    async fn a_failed_part_aborts_the_multipart_upload_which_carried_the_signed_acl() {
        let (addr, seen) = fake(|method, target| match method {
            "POST" => (
                200,
                "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>dir/key.mp4</Key>\
                 <UploadId>U1</UploadId></InitiateMultipartUploadResult>",
            ),
            "PUT" if target.contains("partNumber=2") => (
                403,
                "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            ),
            "PUT" => (200, ""),
            _ => (204, ""),
        })
        .await;
        let cx = context(Some(addr), 5 * MIB as u64);
        let e = send(&destination(addr), &cx, &payload(11 * MIB))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            UploadError::Refused("S3 answered 403 Forbidden: AccessDenied: Access Denied".into())
        );

        let seen = seen.lock().unwrap().clone();
        let create = &seen[0];
        assert_eq!(create.method, "POST");
        assert_eq!(create.target, "/bkt/dir/key.mp4?uploads=");
        // The seed's default ACL, signed like every x-amz-* header.
        assert_eq!(create.header("x-amz-acl"), Some("public-read"));
        let auth = create.header("authorization").unwrap();
        assert!(
            auth.contains("x-amz-acl") && auth.contains("x-amz-meta-campaign"),
            "{auth}"
        );
        assert_eq!(create.header("content-type"), Some("video/mp4"));
        assert_eq!(create.header("x-amz-meta-campaign"), Some("spring"));
        assert!(
            seen.iter()
                .any(|s| s.method == "DELETE" && s.target == "/bkt/dir/key.mp4?uploadId=U1"),
            "the upload is aborted: {seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|s| s.method == "POST" && s.target.contains("uploadId")),
            "never completed: {seen:?}"
        );
    }

    #[tokio::test]
    async fn a_5xx_is_transient_and_tried_once() {
        let (addr, seen) = fake(|_, _| {
            (
                503,
                "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>",
            )
        })
        .await;
        let cx = context(Some(addr), 5 * MIB as u64);
        let e = send(&destination(addr), &cx, &payload(1000))
            .await
            .unwrap_err();
        assert!(matches!(e, UploadError::Transient(_)), "{e:?}");
        assert!(
            e.to_string().contains("503") && e.to_string().contains("SlowDown"),
            "{e}"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "object_store does not retry by itself");
        assert_eq!(seen[0].method, "PUT");
        assert_eq!(seen[0].header("x-amz-acl"), Some("public-read"));
    }

    #[tokio::test]
    async fn a_private_address_is_refused_before_any_connection() {
        let (addr, seen) = fake(|_, _| (200, "")).await;
        let cx = context(None, 5 * MIB as u64);
        let e = send(&destination(addr), &cx, &payload(1000))
            .await
            .unwrap_err();
        assert!(matches!(e, UploadError::Refused(_)), "{e:?}");
        assert!(e.to_string().contains("private"), "{e}");
        assert!(seen.lock().unwrap().is_empty());
    }
}

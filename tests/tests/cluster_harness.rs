//! The cluster harness itself (tests/src/cluster.rs): nodes on one
//! PostgreSQL repository behind nginx with the deployment example's
//! rules; the first two tests keep blobs in each node's files (shared
//! records only), the last shares a SeaweedFS bucket.

use clipstream_tests::cluster::{Blobs, Cluster};
use clipstream_tests::json;
use clipstream_tests::media::duration;
use serde_json::json;

const VIEWER_RENDERS: &str = "clipstream_renders_started_total{reason=\"viewer\"}";

/// A one-second title at preview size: a render of a fraction of a second.
fn tiny_movie(text: &str) -> serde_json::Value {
    json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "title", "text": text }, "start": 0, "length": 1.0 } ] }
        ] },
        "output": { "format": "mp4", "resolution": "preview" }
    })
}

#[test]
fn one_node_answers_through_nginx_with_the_clusters_key() {
    let cluster = Cluster::start_with(1, Blobs::Files, &[]);
    let lb = cluster.lb();
    let (status, health) = json(lb.anonymous().get("/healthz"));
    assert_eq!(status, 200, "{health}\n{}", cluster.logs());
    assert_eq!(health["status"], "ok");

    let uid = lb.create_project("through-nginx");
    // The same project, listed by the node itself.
    let (status, list) = json(cluster.node(0).get("/v1/list/project"));
    assert_eq!(status, 200, "{list}");
    assert!(list.to_string().contains(&uid), "{list}");
    // nginx logged the call it passed on.
    assert!(
        cluster
            .nginx
            .access_log()
            .contains("POST /v1/project/through-nginx"),
        "{}",
        cluster.nginx.access_log()
    );
    // A wrong secret is refused through nginx as directly.
    let (status, _) = json(
        lb.with_auth(&cluster.key.key, "wrong")
            .get("/v1/list/project"),
    );
    assert_eq!(status, 401);

    // A video streamed through nginx's unbuffered video route is whole.
    let token = lb.render_token(&uid, "hello", &tiny_movie("Hello"), json!({}));
    let r = lb.anonymous().get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200, "{}", cluster.logs());
    let body = r.bytes().expect("body");
    let file = cluster.dir.path().join("hello.mp4");
    std::fs::write(&file, &body).unwrap();
    // ffprobe reads the whole file's length: nothing was cut on the way.
    let secs = duration(&file);
    assert!((0.9..1.2).contains(&secs), "{secs} s");
    assert_eq!(cluster.metric_sum(VIEWER_RENDERS), 1);
}

#[test]
fn two_nodes_share_records_and_a_killed_node_comes_back_at_its_address() {
    let gpu: &[(&str, &str)] = &[("CLIPSTREAM_CLUSTER_ROUTING_KEYS", "[gpu]")];
    let mut cluster = Cluster::start_nodes(&[&[], gpu], Blobs::Files, &[]);
    // Each node's own settings: its name, its address, its routing keys.
    for i in 0..2 {
        let out = cluster.cli(i, &["config"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(c["cluster"]["node_id"], format!("node{i}"));
        assert_eq!(c["cluster"]["advertise_url"], cluster.url(i));
        assert_eq!(c["storage"]["repository"], "postgres");
        let keys = if i == 1 { json!(["gpu"]) } else { json!([]) };
        assert_eq!(c["cluster"]["routing_keys"], keys);
    }
    let uid = cluster.node(0).create_project("shared");
    // Created through node 0, listed by node 1: one repository.
    let (status, list) = json(cluster.node(1).get("/v1/list/project"));
    assert_eq!(status, 200, "{list}");
    assert!(
        list.to_string().contains(&uid),
        "{list}\n{}",
        cluster.logs()
    );

    // A render on node 1 counts in the sum over nodes.
    let token = cluster
        .node(1)
        .render_token(&uid, "on-one", &tiny_movie("One"), json!({}));
    let r = cluster
        .node(1)
        .anonymous()
        .get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200, "{}", cluster.logs());
    assert_eq!(cluster.metric_sum(VIEWER_RENDERS), 1);
    assert_eq!(cluster.node(0).metric(VIEWER_RENDERS), 0);

    cluster.kill(1);
    assert!(!cluster.is_running(1));
    // Through nginx, the live node answers.
    let (status, list) = json(cluster.lb().get("/v1/list/project"));
    assert_eq!(status, 200, "{}", cluster.logs());
    assert!(list.to_string().contains(&uid), "{list}");
    cluster.restart(1);
    let (status, list) = json(cluster.node(1).get("/v1/list/project"));
    assert_eq!(status, 200, "{list}");
    assert!(list.to_string().contains(&uid), "{list}");
    assert_eq!(cluster.url(1), cluster.node(1).url(""));
    // The restarted node's counters start again from zero.
    assert_eq!(cluster.metric_sum(VIEWER_RENDERS), 0);
}

/// The cluster's real shape (needs the S3 blob store, issue 21 S2): an
/// asset stored through node 0 is read through node 1 from the shared
/// bucket, and a video of it streams through nginx.
#[test]
fn two_nodes_on_one_bucket_share_an_asset_and_a_video_streams_through_nginx() {
    let cluster = Cluster::start(2, &[]);
    let uid = cluster.node(0).create_project("bucket");
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conf/examples/logo.png"
    ))
    .expect("conf/examples/logo.png");
    let r = cluster
        .node(0)
        .put(&format!("/v1/data/{uid}/logo.png"), png.clone());
    assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
    let r = cluster.node(1).get(&format!("/v1/data/{uid}/logo.png"));
    assert_eq!(r.status(), 200, "{}", cluster.logs());
    assert!(r.bytes().expect("body") == png, "node 1 read other bytes");
    let bucket = cluster.seaweedfs.as_ref().expect("SeaweedFS");
    assert!(
        !bucket.keys(clipstream_tests::cluster::BUCKET).is_empty(),
        "nothing in the bucket"
    );

    let movie = json!({
        "timeline": { "background": "#203040", "tracks": [
            { "clips": [ { "asset": { "type": "image", "src": "logo.png" },
                           "start": 0, "length": 1.0 } ] }
        ] },
        "output": { "format": "mp4", "resolution": "preview" }
    });
    let token = cluster.lb().render_token(&uid, "logo", &movie, json!({}));
    let r = cluster
        .lb()
        .anonymous()
        .get(&format!("/render/{token}.mp4"));
    assert_eq!(r.status(), 200, "{}", cluster.logs());
    let file = cluster.dir.path().join("logo.mp4");
    std::fs::write(&file, r.bytes().expect("body")).unwrap();
    let secs = duration(&file);
    assert!((0.9..1.2).contains(&secs), "{secs} s");
}

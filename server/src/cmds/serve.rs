//! `clipstream serve`: the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::Condition;
use actix_web::{web, App, HttpServer};
use tracing_actix_web::TracingLogger;

use super::{open_node_store, CmdResult};
use crate::admin::socket::AdminSocket;
use crate::admin::AdminError;
use crate::config::Config;
use crate::http::state::AppState;
use crate::http::throttle::AuthThrottle;

/// How often expired chunked uploads are swept away.
const EXPIRE_EVERY: Duration = Duration::from_secs(3600);

pub fn run(config: Config) -> CmdResult {
    crate::telemetry::init(&config.log);
    clipstream_actors::engine::media::set_max_pixels(config.max_source_pixels());
    clipstream_actors::sound_cache::set_capacity(
        usize::try_from(config.render.sound_cache_bytes).unwrap_or(usize::MAX),
    );
    clipstream_actors::segments::set_capacity(
        usize::try_from(config.segments.memory_bytes).unwrap_or(usize::MAX),
    );
    // Bound first: a node of a cluster tells the others its address.
    let listener = TcpListener::bind(config.server.listen)?;
    let addr = listener.local_addr()?;
    let (store, pg) = open_node_store(&config)?;
    let store = join_cluster(store, pg.as_deref(), &config, addr)?;
    clipstream_actors::segments::set_store(Arc::new(crate::segment_store::StoredSegments::new(
        store.clone(),
        config.segments.cache_bytes,
    )?));
    // Before the first-start hint: the command it suggests needs the socket.
    let mut admin = match AdminSocket::bind(config.data_dir()) {
        Ok(admin) => Some(admin),
        // The server is still of use without it (a data directory whose
        // path is too long for a socket, a filesystem without sockets):
        // keys are then managed with the server stopped.
        Err(e @ AdminError::Bind { .. }) => {
            tracing::warn!(error = %e, "no admin socket: `clipstream keys` needs the server stopped");
            None
        }
        Err(e) => return Err(e.into()),
    };
    if store.key_count() == 0 {
        let when = if admin.is_some() {
            "Create one while the server runs"
        } else {
            "Stop the server and create one"
        };
        eprintln!(
            "clipstream: no API keys yet. {when}:\n\n    \
             clipstream keys create --data-dir {}\n\n\
             and use the key and secret with HTTP Basic auth.",
            config.data_dir().display()
        );
    }
    let config = Arc::new(config);
    let state = web::Data::new(AppState {
        store: store.clone(),
        config: config.clone(),
        auth_throttle: AuthThrottle::new(
            config.limits.auth_failures,
            Duration::from_secs(config.limits.auth_failure_window_secs),
        ),
    });
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let callbacks = web::Data::new(crate::shotstack::callback::Callbacks::new(
        &config,
        store.clone(),
        metrics.clone(),
    )?);
    let renders = crate::delivery::Renders::new(store.clone(), config.clone(), metrics.clone())?;
    let renders = Arc::new(renders);
    let renders_data = web::Data::new(renders.clone());
    let uploads = crate::upload::Uploads::new(
        store.clone(),
        renders.clone(),
        metrics,
        Arc::new(config.upload.clone()),
    )?;
    let uploads_data = web::Data::new(uploads.clone());
    let shotstack_renders = crate::shotstack::render::Services {
        state: state.clone(),
        renders: renders.clone(),
        uploads: uploads.clone(),
        callbacks: callbacks.get_ref().clone(),
    };

    let ingest = crate::shotstack::ingest::Ctx {
        state: state.clone(),
        renders: renders_data.clone(),
        callbacks: callbacks.clone(),
    };

    let resumed_callbacks = callbacks.get_ref().clone();
    let restarts = restarts(
        &store,
        &config,
        &uploads,
        &shotstack_renders,
        &callbacks,
        &ingest,
    );
    let request_spans = crate::telemetry::request_spans();
    actix_web::rt::System::new().block_on(async move {
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(renders_data.clone())
                .app_data(uploads_data.clone())
                .app_data(callbacks.clone())
                .configure(crate::http::json_errors)
                .configure(crate::routes::configure)
                .configure(crate::shotstack::configure)
                .configure(crate::pixop::configure)
                .default_service(crate::http::not_found())
                .wrap(Condition::new(
                    request_spans,
                    TracingLogger::<crate::telemetry::PathOnly>::new(),
                ))
        })
        .client_request_timeout(Duration::from_secs(
            config.server.client_request_timeout_secs,
        ))
        .shutdown_timeout(config.server.shutdown_timeout_secs)
        .on_connect(bound_send_buffer)
        .listen(listener)?;
        if config.server.workers > 0 {
            server = server.workers(config.server.workers);
        }
        actix_web::rt::spawn(expire_uploads(store.clone()));
        if store.cluster().shared() {
            actix_web::rt::spawn(renders.clone().keep_leases());
            actix_web::rt::spawn(renders.clone().take_queued());
            actix_web::rt::spawn(crate::cluster::take_over(store.clone(), restarts));
        }
        actix_web::rt::spawn(crate::shotstack::ingest::sweep_uploads(store.clone()));
        // Background jobs a crash interrupted run again; the queue holds
        // them behind any viewer.
        match renders.resume().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "interrupted background jobs queued again"),
            Err(e) => tracing::error!(error = %e, "interrupted jobs could not be read"),
        }
        // So do uploads, once their outputs are in the cache.
        match uploads.resume() {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "interrupted uploads started again"),
            Err(e) => tracing::error!(error = %e, "interrupted uploads could not be read"),
        }
        // And the Shotstack API's renders: hosting, uploads, callback.
        match crate::shotstack::render::resume(&shotstack_renders) {
            Ok(0) => {}
            Ok(n) => tracing::info!(renders = n, "unfinished shotstack renders taken up again"),
            Err(e) => tracing::error!(error = %e, "unfinished shotstack renders could not be read"),
        }
        // And ingested sources (Shotstack's Ingest API) and their renditions.
        match crate::shotstack::ingest::resume(ingest).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sources = n, "interrupted ingests started again"),
            Err(e) => tracing::error!(error = %e, "interrupted ingests could not be read"),
        }
        // Pixop ingestions cut off run again; processing jobs are failed.
        match crate::pixop::media::resume(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(videos = n, "interrupted Pixop jobs taken up"),
            Err(e) => tracing::error!(error = %e, "interrupted Pixop jobs could not be read"),
        }
        crate::publish::resume(&store, &config);
        // Last, callbacks a stop cut off (those of the renders and sources
        // just taken up are sent when they end).
        match resumed_callbacks.resume() {
            Ok(0) => {}
            Ok(n) => tracing::info!(callbacks = n, "undelivered callbacks sent again"),
            Err(e) => tracing::error!(error = %e, "undelivered callbacks could not be read"),
        }
        if let Some(admin) = admin.as_mut() {
            admin.serve(store.clone())?;
        }
        // Polled once before anyone is told it listens: that first poll
        // installs its signal handlers, so a SIGTERM right after the line
        // below is a clean shutdown.
        let mut running = server.run();
        let ended = futures_util::future::poll_immediate(&mut running).await;
        // The one line on stdout: scripts and tests read the address here.
        println!("clipstream listening on http://{addr}");
        tracing::info!(%addr, data_dir = %config.data_dir().display(), "serving");
        match ended {
            Some(ended) => ended?,
            None => running.await?,
        }
        // Pixop processing jobs stop at their next packet rather than
        // hold the exit (the restart fails them, saying so).
        crate::pixop::cancel::cancel_all();
        store.flush().await?;
        // A clean exit takes its socket away; a killed server's is
        // replaced at the next start.
        drop(admin);
        Ok(())
    })
}

/// How each kind of job of a node that died starts again here.
fn restarts(
    store: &clipstream_storage::Store,
    config: &Arc<Config>,
    uploads: &Arc<crate::upload::Uploads>,
    renders: &crate::shotstack::render::Services,
    callbacks: &web::Data<Arc<crate::shotstack::callback::Callbacks>>,
    ingest: &crate::shotstack::ingest::Ctx,
) -> Vec<(&'static str, crate::cluster::Restart)> {
    use crate::cluster::{
        CALLBACK, PIXOP_INGEST, PIXOP_PROCESS, PUBLISH, SHOTSTACK_RENDER, SOURCE, UPLOAD,
    };
    let (store, config) = (store.clone(), config.clone());
    let (uploads, renders) = (uploads.clone(), renders.clone());
    let (callbacks, ingest) = (callbacks.get_ref().clone(), ingest.clone());
    let pixop = store.clone();
    vec![
        (UPLOAD, Arc::new(move |key: String| uploads.take_over(&key))),
        (
            SHOTSTACK_RENDER,
            Arc::new(move |id| crate::shotstack::render::take_over(&renders, id)),
        ),
        (
            CALLBACK,
            Arc::new(move |id: String| callbacks.take_over(&id)),
        ),
        (
            PUBLISH,
            Arc::new(move |key: String| crate::publish::take_over(&store, &config, &key)),
        ),
        (
            SOURCE,
            Arc::new(move |id| {
                actix_web::rt::spawn(crate::shotstack::ingest::take_over(ingest.clone(), id));
            }),
        ),
        (
            PIXOP_INGEST,
            Arc::new({
                let store = pixop.clone();
                move |id| {
                    actix_web::rt::spawn(crate::pixop::media::take_over(store.clone(), id));
                }
            }),
        ),
        (
            PIXOP_PROCESS,
            Arc::new(move |id| {
                actix_web::rt::spawn(crate::pixop::media::take_over(pixop.clone(), id));
            }),
        ),
    ]
}

/// The store as a node of its cluster: alone on sled, or one of the
/// nodes sharing its PostgreSQL repository, named and reachable as the
/// `[cluster]` settings say (by default, the host name and the port, and
/// the listening address).
fn join_cluster(
    store: clipstream_storage::Store,
    pg: Option<&clipstream_storage::PgRepo>,
    config: &Config,
    addr: std::net::SocketAddr,
) -> Result<clipstream_storage::Store, clipstream_storage::Error> {
    use clipstream_storage::cluster::{Local, NodeSettings, PgCoordinator};
    let cluster = &config.cluster;
    let Some(pg) = pg else {
        return Ok(store.with_coordinator(Arc::new(Local::new(cluster.routing_keys.clone()))));
    };
    if cluster.heartbeat_secs >= cluster.lease_secs {
        return Err(clipstream_storage::Error::Config(format!(
            "cluster.heartbeat_secs ({}) must be shorter than cluster.lease_secs ({}): \
             every claim would lapse between two heartbeats",
            cluster.heartbeat_secs, cluster.lease_secs
        )));
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let node_id = if cluster.node_id.is_empty() {
        format!("{host}-{}", addr.port())
    } else {
        cluster.node_id.clone()
    };
    let url = match (cluster.advertise_url.is_empty(), addr.ip().is_unspecified()) {
        (false, _) => cluster.advertise_url.clone(),
        // Listening on every interface: the others reach it by its name.
        (true, true) => format!("http://{host}:{}", addr.port()),
        (true, false) => format!("http://{addr}"),
    };
    let settings = NodeSettings {
        node_id,
        url,
        routing_keys: cluster.routing_keys.clone(),
        lease: Duration::from_secs(cluster.lease_secs.max(1)),
    };
    tracing::info!(node = %settings.node_id, url = %settings.url, "joining the cluster of the PostgreSQL repository");
    let coordinator = PgCoordinator::join(pg, settings)?;
    Ok(store.with_coordinator(Arc::new(coordinator)))
}

/// What a connection may have queued in the kernel (which doubles it for
/// its bookkeeping). A cached body is ready at once, so without a bound
/// every viewer's socket fills to the autotuned maximum (4 MiB): 500 viewers
/// of full GETs held 550 MB of socket memory, cold in cache by the time it
/// was read, at half the throughput; with 64 KiB they get 1.45× what the
/// old file-reading path got, and 16 connections 2.2×.
const SEND_BUFFER: usize = 64 * 1024;

fn bound_send_buffer(conn: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        // Best effort: the kernel's default is a correct, if costlier, fallback.
        let _ = socket2::SockRef::from(tcp).set_send_buffer_size(SEND_BUFFER);
    }
}

async fn expire_uploads(store: clipstream_storage::Store) {
    let mut every = actix_web::rt::time::interval(EXPIRE_EVERY);
    loop {
        every.tick().await;
        match store.expire_uploads().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "expired chunked uploads removed"),
            Err(e) => tracing::warn!(error = %e, "sweeping expired uploads failed"),
        }
    }
}

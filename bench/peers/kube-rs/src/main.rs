//! The kube-rs peer of `crdkit aws-auth run`: AWSAuth objects of
//! WATCH_NAMESPACE merged into CONFIGMAP_NAMESPACE/CONFIGMAP_NAME.

use std::{collections::BTreeMap, io::IsTerminal, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Client, CustomResource, Resource, ResourceExt,
    api::{Api, ObjectMeta, PostParams},
    runtime::{
        controller::{self, Action, Controller},
        finalizer::{Event, finalizer},
        reflector::Store,
        watcher,
    },
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, info, warn};

const FINALIZER: &str = "crdkit.io/aws-auth-peer";

/// One entry of aws-auth's mapRoles.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
pub struct RoleMapping {
    pub rolearn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// One entry of aws-auth's mapUsers.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
pub struct UserMapping {
    pub userarn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The AWSAuth spec, reduced to what the peer reads (exactly one of the two
/// lists is set: the CRD enforces it). Status is not modelled.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "crdkit.io",
    version = "v1alpha1",
    kind = "AWSAuth",
    plural = "awsauths",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct AWSAuthSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_roles: Option<Vec<RoleMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_users: Option<Vec<UserMapping>>,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    #[error("yaml: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

struct Ctx {
    client: Client,
    store: Store<AWSAuth>,
    namespace: String,
    cm_namespace: String,
    cm_name: String,
}

/// The entries of every AWSAuth not being deleted, sorted by ARN (then by
/// object name, for duplicates).
fn merge(objs: &[Arc<AWSAuth>]) -> (Vec<RoleMapping>, Vec<UserMapping>) {
    let mut live: Vec<&Arc<AWSAuth>> = objs
        .iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .collect();
    live.sort_by_key(|o| o.name_any());
    let mut roles: Vec<RoleMapping> = live
        .iter()
        .flat_map(|o| o.spec.map_roles.iter().flatten().cloned())
        .collect();
    let mut users: Vec<UserMapping> = live
        .iter()
        .flat_map(|o| o.spec.map_users.iter().flatten().cloned())
        .collect();
    roles.sort_by(|a, b| a.rolearn.cmp(&b.rolearn));
    users.sort_by(|a, b| a.userarn.cmp(&b.userarn));
    (roles, users)
}

/// Writes the merged entries into the ConfigMap with the resourceVersion
/// precondition (replace = PUT), retrying on 409; creates it when missing.
/// Other data keys are kept.
async fn sync_configmap(ctx: &Ctx) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.cm_namespace);
    let mut attempt = 0;
    loop {
        let live = api.get_opt(&ctx.cm_name).await?;
        let (roles, users) = merge(&ctx.store.state());
        let want = BTreeMap::from([
            ("mapRoles".to_string(), serde_yaml_ng::to_string(&roles)?),
            ("mapUsers".to_string(), serde_yaml_ng::to_string(&users)?),
        ]);
        let res = match live {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(ctx.cm_name.clone()),
                        namespace: Some(ctx.cm_namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    data: Some(want),
                    ..ConfigMap::default()
                };
                api.create(&PostParams::default(), &cm)
                    .await
                    .map(|_| "created")
            }
            Some(mut cm) => {
                let data = cm.data.get_or_insert_with(BTreeMap::new);
                if want.iter().all(|(k, v)| data.get(k) == Some(v)) {
                    return Ok(());
                }
                data.extend(want);
                // cm carries metadata.resourceVersion: a concurrent write gives 409.
                api.replace(&ctx.cm_name, &PostParams::default(), &cm)
                    .await
                    .map(|_| "updated")
            }
        };
        match res {
            Ok(what) => {
                info!(configmap = %format!("{}/{}", ctx.cm_namespace, ctx.cm_name),
                      map_roles = roles.len(), map_users = users.len(), "configmap {what}");
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 5 => {
                attempt += 1;
                debug!(attempt, "conflict writing the configmap, retrying");
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn reconcile(obj: Arc<AWSAuth>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let api: Api<AWSAuth> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    // The finalizer helper adds the finalizer first (Apply then runs on the
    // next event); on Cleanup the object is excluded from the merge (it has
    // a deletionTimestamp), and the finalizer is removed after success.
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Event::Apply(_) => sync_configmap(&ctx).await.map(|_| Action::await_change()),
            Event::Cleanup(o) => {
                sync_configmap(&ctx).await?;
                info!(awsauth = %o.name_any(), "entries removed");
                Ok(Action::await_change())
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

fn error_policy(_obj: Arc<AWSAuth>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    warn!(error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// A plain /healthz on HEALTH_PORT: kube-rs has no probe server of its own.
async fn serve_health(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    loop {
        let (mut sock, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .await;
        });
    }
}

fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => {
            eprintln!("{name} must be set");
            std::process::exit(2);
        }
    }
}

fn port_env(name: &str) -> Option<u16> {
    std::env::var(name)
        .ok()
        .and_then(|p| p.parse().ok())
        .filter(|p| *p != 0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let namespace = require_env("WATCH_NAMESPACE");
    let cm_namespace = require_env("CONFIGMAP_NAMESPACE");
    let cm_name = require_env("CONFIGMAP_NAME");
    if let Some(port) = port_env("HEALTH_PORT") {
        tokio::spawn(async move {
            if let Err(e) = serve_health(port).await {
                warn!(error = %e, "health server stopped");
            }
        });
    }
    if port_env("METRICS_PORT").is_some() {
        warn!("METRICS_PORT is ignored: kube-rs has no metrics endpoint of its own");
    }

    let client = Client::try_default().await?;
    let api: Api<AWSAuth> = Api::namespaced(client.clone(), &namespace);
    let controller = Controller::new(api, watcher::Config::default()).shutdown_on_signal();
    let ctx = Arc::new(Ctx {
        client,
        store: controller.store(),
        namespace: namespace.clone(),
        cm_namespace,
        cm_name,
    });
    info!(%namespace, configmap = %format!("{}/{}", ctx.cm_namespace, ctx.cm_name), "starting");
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            match res {
                Ok((obj, _)) => debug!(%obj, "reconciled"),
                Err(controller::Error::ObjectNotFound(obj)) => debug!(%obj, "gone"),
                Err(e) => warn!(error = %e, "controller"),
            }
        })
        .await;
    info!("stopped");
    Ok(())
}

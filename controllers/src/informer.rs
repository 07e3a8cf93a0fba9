//! Shared informers: one watch and one cache per kind, fanned out to every controller that
//! needs it. Unlike kube-rs's shared reflector streams, deletions are fanned out too, so an
//! owner is woken when one of its children disappears.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Events a slow subscriber may fall behind by before it is resynced from the cache.
const FANOUT_BUFFER: usize = 4096;

/// The cache of one kind plus the fan-out of its changes.
pub struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    tx: broadcast::Sender<Arc<K>>,
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every object now cached, then every later change (deletions included). A subscriber
    /// that lags behind gets the whole cache again instead of the changes it missed.
    pub fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let rx = self.tx.subscribe();
        let snapshot = self.store.state();
        let store = self.store.clone();
        let changes = futures::stream::unfold((rx, store), |(mut rx, store)| async move {
            let batch = match rx.recv().await {
                Ok(obj) => vec![obj],
                Err(broadcast::error::RecvError::Lagged(_)) => store.state(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((futures::stream::iter(batch), (rx, store)))
        })
        .flatten();
        futures::stream::iter(snapshot).chain(changes)
    }
}

/// The informers of one manager, created on first use.
pub struct Informers {
    client: kube::Client,
    shutdown: CancellationToken,
    by_kind: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    ready: Mutex<Vec<BoxFuture<'static, ()>>>,
}

impl Informers {
    pub fn new(client: kube::Client, shutdown: CancellationToken) -> Self {
        Informers {
            client,
            shutdown,
            by_kind: Mutex::default(),
            ready: Mutex::default(),
        }
    }

    /// The informer of `K` across all namespaces, started on first use.
    pub fn get<K>(&self) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut map = self.by_kind.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = map
            .get(&TypeId::of::<K>())
            .and_then(|any| any.clone().downcast::<Informer<K>>().ok())
        {
            return found;
        }
        let (store, mut writer) = reflector::store::<K>();
        let (tx, _) = broadcast::channel(FANOUT_BUFFER);
        let informer = Arc::new(Informer {
            store: store.clone(),
            tx: tx.clone(),
        });
        map.insert(TypeId::of::<K>(), informer.clone());
        let ready_store = store.clone();
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).push(
            async move {
                let _ = ready_store.wait_until_ready().await;
            }
            .boxed(),
        );
        let api: Api<K> = Api::all(self.client.clone());
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let events = watcher(api, watcher::Config::default()).default_backoff();
            let mut events = std::pin::pin!(events);
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    e = events.next() => e,
                };
                match event {
                    Some(Ok(ev)) => {
                        writer.apply_watcher_event(&ev);
                        match ev {
                            watcher::Event::Apply(obj) | watcher::Event::Delete(obj) => {
                                let _ = tx.send(Arc::new(obj));
                            }
                            watcher::Event::InitDone => {
                                for obj in store.state() {
                                    let _ = tx.send(obj);
                                }
                            }
                            _ => {}
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed, retrying")
                    }
                    None => break,
                }
            }
        });
        informer
    }

    /// Waits until every informer created so far has listed its kind once.
    pub async fn wait_ready(&self) {
        let pending: Vec<_> =
            std::mem::take(&mut *self.ready.lock().unwrap_or_else(|p| p.into_inner()));
        futures::future::join_all(pending).await;
    }
}

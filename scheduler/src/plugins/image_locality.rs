//! ImageLocality: prefers nodes that already hold the pod's images, weighted by image size
//! and by how widely the image is spread.

use super::{Plugin, State, MAX_NODE_SCORE};
use crate::cache::Cache;
use crate::model::{normalize_image, NodeInfo, PodInfo};

pub struct ImageLocality;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The pod's images with the fraction of nodes holding each.
struct Images {
    images: Vec<(String, f64)>,
    containers: i64,
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }

    fn weight(&self) -> i64 {
        1
    }

    fn prepare_score(&self, pod: &PodInfo, cache: &Cache, _: &[&NodeInfo]) -> State {
        let spec = pod.pod.spec.as_ref()?;
        let total = cache.node_count().max(1) as f64;
        let names: Vec<&str> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .filter_map(|c| c.image.as_deref())
            .collect();
        let images = names
            .iter()
            .filter_map(|n| {
                let n = normalize_image(n);
                let spread = *cache.image_nodes.get(&n)? as f64 / total;
                Some((n, spread))
            })
            .collect::<Vec<_>>();
        if images.is_empty() {
            return None;
        }
        Some(Box::new(Images {
            images,
            containers: names.len() as i64,
        }))
    }

    fn score(&self, _: &PodInfo, node: &NodeInfo, st: &State) -> i64 {
        let Some(s) = super::state::<Images>(st) else {
            return 0;
        };
        let sum: f64 = s
            .images
            .iter()
            .filter_map(|(name, spread)| {
                let (_, size) = node.images.iter().find(|(n, _)| n == name)?;
                Some(*size as f64 * spread)
            })
            .sum();
        let max = MAX_CONTAINER_THRESHOLD * s.containers;
        let sum = (sum as i64).clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

//! NodeName: a pod naming a node fits only there.

use super::{Failure, FilterResult, Plugin, State};
use crate::model::{NodeInfo, PodInfo};

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo, _: &State) -> FilterResult {
        match &pod.node_name {
            Some(n) if *n != node.name => Err(Failure::unresolvable(
                "node(s) didn't match the requested node name",
            )),
            _ => Ok(()),
        }
    }
}

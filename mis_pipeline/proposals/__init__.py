"""Training proposals from merge trees (MIS Algorithm 2, its ablations, node masks).

Public API
----------
:func:`sample_node`      MIS top-down sampling with the reference's area filter -> node id
:func:`sample_proposal`  the sampler named by ``ProposalConfig.sampler`` -> node id
:data:`SAMPLERS`         registry ``{"top_down", "root_children", "uniform"}``
:func:`node_mask`        a node's bool mask on the grid or at image size (from leaf spans)
:func:`other_nodes`      the proposal's sibling and cousins ("other objects")
:func:`other_mask`       their union as a bool mask
"""

from .masks import leaves_mask, node_mask, other_mask, other_nodes
from .sampling import SAMPLERS, sample_node, sample_proposal

__all__ = [
    "SAMPLERS",
    "leaves_mask",
    "node_mask",
    "other_mask",
    "other_nodes",
    "sample_node",
    "sample_proposal",
]

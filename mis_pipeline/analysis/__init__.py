"""Analyses that span several pipeline stages (here: features and merge together).

- :mod:`.pos_embed`: how much the position-embedding resize ('timm' vs 'official') changes
  the tokens and the Ward merge trees (:func:`compare_pos_embed`, :func:`tree_agreement`).

Kept out of :mod:`mis_pipeline.features` and :mod:`mis_pipeline.merge` so that neither depends
on the other.
"""

from .pos_embed import PosEmbedComparison, compare_pos_embed, default_tree_fn, tree_agreement

__all__ = ["compare_pos_embed", "tree_agreement", "PosEmbedComparison", "default_tree_fn"]

"""Optimal-transport performance projector (Kang et al. 2023) and pool scoring.

- :mod:`.features`: document featurizers and a per-document feature cache.
- :mod:`.ot_distance`: :class:`MixtureOT`, OT of a mixture to a target with gradients.
- :mod:`.projector`: stage-1 :class:`OTProjector`, stage-2 :class:`TwoStageProjector`.
- :mod:`.scale`: :class:`ScaleProjector`, stage 1 per scale carried across model size and tokens.
- :mod:`.scoring`: :func:`score_pools`.
"""

from .features import (FeatureCache, HashingFeaturizer, ProxyHiddenFeaturizer, SentenceTransformerFeaturizer,
                       featurize)
from .ot_distance import MixtureOT
from .from_runs import checkpoint_losses
from .projector import OTProjector, TwoStageProjector
from .scale import ScaleProjector
from .scoring import score_pools

__all__ = [
    "FeatureCache", "HashingFeaturizer", "ProxyHiddenFeaturizer", "SentenceTransformerFeaturizer", "featurize",
    "MixtureOT", "OTProjector", "checkpoint_losses", "TwoStageProjector", "ScaleProjector", "score_pools",
]

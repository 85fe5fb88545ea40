"""Probabilistic models of repeat purchases and spend, in numpy and scipy.

``PURCHASE_MODELS`` maps a model kind (as written in saved models and on the
command line) to its class.
"""

from __future__ import annotations

from ltvkit.models.bgnbd import BGNBDModel
from ltvkit.models.gammagamma import GammaGammaModel
from ltvkit.models.mbgnbd import MBGNBDModel
from ltvkit.models.paretonbd import ParetoNBDModel

__all__ = [
    "BGNBDModel",
    "GammaGammaModel",
    "MBGNBDModel",
    "PURCHASE_MODELS",
    "ParetoNBDModel",
]

PURCHASE_MODELS = {
    "bgnbd": BGNBDModel,
    "mbgnbd": MBGNBDModel,
    "paretonbd": ParetoNBDModel,
}

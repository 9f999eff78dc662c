"""Integer codes shared by the example builders (:mod:`shikong.training`) and the models
(:mod:`shikong.models`): core, so neither package imports the other for them (and the
pandas builders stay free of torch).
"""

from __future__ import annotations

#: Event type codes of the recommender's ``hist_events`` (0 = padding).
EVENT_CODES = {"view": 1, "cart": 2, "purchase": 3}
#: Item indices reserved for padding and out-of-vocabulary SKUs.
PAD, OOV = 0, 1

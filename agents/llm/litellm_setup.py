"""litellm, imported the one way archlab imports it: with its price table read from the
installed package (importing must not reach for the network) and its banners off."""
from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # import must not fetch the price map
import litellm  # noqa: E402  (must follow the environment setting above)

litellm.suppress_debug_info = True  # its "give feedback" banners would flood unattended logs

__all__ = ["litellm"]

"""How deep the property tests go: Hypothesis profiles, chosen once for the whole run.

`default` (every `make test`) runs half of Hypothesis's own 100 examples per property; `deep`
runs 1000. HYPOTHESIS_PROFILE=NAME chooses a profile, OPENTILL_DEEP=1 means `deep`. A property
that names its own count says `@settings(max_examples=examples(300))`: 300 at Hypothesis's
usual depth, scaled like the rest (150 by default, 3000 deep). pytest's own
--hypothesis-profile=NAME works as well."""

from __future__ import annotations

import os

from hypothesis import settings

__all__ = ["DEEP", "PROFILE", "examples"]

_USUAL = 100  # Hypothesis's own max_examples, the depth a test's own count was written for
settings.register_profile("default", max_examples=50)
settings.register_profile("deep", max_examples=1000)
DEEP = os.environ.get("OPENTILL_DEEP", "") not in ("", "0")
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("deep" if DEEP else "default")
settings.load_profile(PROFILE)


def examples(usual: int) -> int:
    """A property's own example count `usual`, scaled to the chosen profile (at least 10)."""
    loaded = settings.default  # this profile, or one given with pytest's --hypothesis-profile
    assert loaded is not None
    return max(10, usual * loaded.max_examples // _USUAL)

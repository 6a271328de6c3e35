"""How a topic writes its presets: each model's base settings once, and per profile only what differs.

>>> table = by_profile({"epochs": 20, "model": {"channels": 64}}, smoke={"epochs": 1, "model": {"channels": 8}})
>>> table["smoke"], table["cpu"]
({'epochs': 1, 'model': {'channels': 8}}, {'epochs': 20, 'model': {'channels': 64}})
"""

from __future__ import annotations

import copy
from typing import Any

from course_lib.runtime import PROFILES


def merge(base: dict[str, Any], overrides: dict[str, Any], *, _nested: bool = False) -> dict[str, Any]:
    """A new dict: ``base`` with ``overrides`` applied (both left unchanged).

    A nested dict (a model's arguments) is merged key by key; any other value is replaced
    whole (a tuple of hidden sizes, None). At the top level every overridden key must be one
    of the base's, so that a misspelt setting is an error rather than a setting silently
    ignored; inside a nested dict an override may add a key (a model argument that the base
    leaves at its default).

    Raises:
        KeyError: a top-level key that the base does not have, named with the valid ones.
    """
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if key not in base:
            if not _nested:
                raise KeyError(f"override of unknown setting {key!r}; the base has {', '.join(base)}")
            merged[key] = copy.deepcopy(value)
        elif isinstance(base[key], dict) and isinstance(value, dict):
            merged[key] = merge(base[key], value, _nested=True)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def by_profile(base: dict[str, Any], **overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{profile: merge(base, overrides[profile])}`` for every profile of :data:`course_lib.runtime.PROFILES`.

    A profile without overrides gets the base as it is.

    Raises:
        KeyError: an override for a profile that does not exist, or of a setting the base lacks.
    """
    unknown = sorted(set(overrides) - set(PROFILES))
    if unknown:
        raise KeyError(f"overrides for unknown profile(s) {', '.join(map(repr, unknown))}; "
                       f"expected some of {', '.join(PROFILES)}")
    return {profile: merge(base, overrides.get(profile, {})) for profile in PROFILES}

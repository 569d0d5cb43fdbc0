"""Weights of the original SpaCon (PyPI ``spacon`` 0.1.x) in spacon's module layout."""

from __future__ import annotations


def translate_original_state(state: dict) -> dict:
    """Rename the original SpaCon's state_dict keys to spacon's module layout."""
    out = {}
    for key, value in state.items():
        if key.endswith(".lin_dst"):
            continue  # the original shares one weight for sources and targets
        new = key.replace(".lin_src", ".weight").replace(".module.", ".")
        for i in (1, 2, 3):
            new = new.replace(f"conv{i}_.", f"conv{i}.").replace(f"bn{i}_.", f"bn{i}.")
        if new.endswith((".att_src", ".att_dst")):
            value = value.reshape(-1)
        out[new] = value
    return out

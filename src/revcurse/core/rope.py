"""RoPE as rotations of 2-d planes: the trace of the relative rotation R(Δ) (paper §4, Eq. 1), shared by the
theory study and the attention-correlation figures."""
from __future__ import annotations

import numpy as np
from scipy.special import sici


# ---------------------------------------------------------------- RoPE geometry
def rope_frequencies(head_dim: int, base: float) -> np.ndarray:
    """θ_i = base^(−2i/D) for i = 0 … D/2 − 1."""
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"RoPE needs an even head dimension >= 2, got {head_dim}")
    return base ** (-np.arange(0, head_dim, 2) / head_dim)


def rope_rotation(delta: float, head_dim: int, base: float) -> np.ndarray:
    """R(Δ) = diag(R(Δθ_1), …, R(Δθ_m)), a D×D rotation (App. A.1)."""
    angles = delta * rope_frequencies(head_dim, base)
    cos, sin = np.cos(angles), np.sin(angles)
    even = np.arange(0, head_dim, 2)
    rotation = np.zeros((head_dim, head_dim))
    rotation[even, even] = cos
    rotation[even, even + 1] = -sin
    rotation[even + 1, even] = sin
    rotation[even + 1, even + 1] = cos
    return rotation


def rope_trace(delta, head_dim: int, base: float) -> np.ndarray:
    """(1/D)·Tr R(2Δ) = (1/m)·Σ_i cos(2Δθ_i), elementwise over ``delta`` (Theorem 4.1's bound)."""
    delta = np.asarray(delta, dtype=float)
    return np.cos(2 * delta[..., None] * rope_frequencies(head_dim, base)).mean(axis=-1)


def rope_trace_limit(delta, base: float) -> np.ndarray:
    """D → ∞ limit of ``rope_trace``: ∫₀¹ cos(2Δ/base^x) dx = (Ci(2Δ) − Ci(2Δ/base))/log base."""
    x = 2 * np.abs(np.asarray(delta, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):    # Ci(0) = −∞; the limit at Δ = 0 is 1
        integral = (sici(x)[1] - sici(x / base)[1]) / np.log(base)
    return np.where(x == 0, 1.0, integral)

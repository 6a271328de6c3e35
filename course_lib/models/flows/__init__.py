r"""Normalizing flows (topic 06): invertible maps with tractable Jacobians.

Planar and radial flows, affine coupling layers (RealNVP) with masks, squeeze and multi-scale
architectures, and MAF/IAF live here. By the change of variables
:math:`\log p(x) = \log p_Z(f(x)) + \log \lvert \det \partial f(x) / \partial x \rvert`.
The protocol, as topic 06 uses it, for every layer and every whole flow:

``forward(x) -> (z, log_det)``
    the map toward the base distribution and :math:`\log\lvert\det \partial z / \partial x\rvert`
    of each example, shape (B,).
``inverse(z) -> x``
    the exact inverse (a layer that cannot invert in closed form says so in its docstring;
    MAF inverts one dimension at a time, IAF is fast this way and slow the other).
``nll(x) -> (B,)`` (whole flows)
    :math:`-\log p(x)` in nats; on dequantised 8-bit images reported in bits/dim with the
    dequantisation correction of :mod:`course_lib.metrics`.
``sample(n, *, generator=None, temperature=1.0)`` (whole flows)
    :math:`z \sim p_Z` (scaled by ``temperature``) mapped through ``inverse``.
Tests check every layer's inverse and log-determinant against autograd's Jacobian in float64.

Constructors take keyword arguments (``Model(**settings["model"])``), as in every family.
"""

r"""A character-level WaveNet (van den Oord et al., 2016) with a Fast-WaveNet sampler (Paine et al., 2016).

**The model.** A sequence :math:`x_1..x_T` of tokens is modelled autoregressively,
:math:`p(x) = \prod_t p(x_t \mid x_{<t})`, by a stack of *causal* 1-D convolutions:
the output at time :math:`t` may only see inputs at times :math:`< t`.

* A causal convolution with kernel :math:`k` and dilation :math:`d` pads :math:`(k-1)d` zeros on
  the left: :math:`y_t = b + \sum_{j=0}^{k-1} W_j\, h_{t - (k-1-j)d}`.
* The **first** layer also excludes the current step (the "mask A" of PixelCNN): it
  pads one more zero and drops the last output, so it sees :math:`x_{t-k}..x_{t-1}`.
  At :math:`t = 0` it sees only padding, so :math:`p(x_0)` is an unconditional distribution.
* **Residual blocks** with **gated activations**: :math:`z = \tanh(W_f * h) \odot \sigma(W_g * h)`,
  :math:`h \leftarrow h + W_r z` (residual) and :math:`s \leftarrow s + W_s z` (skip), with
  dilations :math:`1, 2, 4, \dots` (restarting every ``dilation_cycle`` layers).
* Output: :math:`\text{logits} = W_2\, \mathrm{ReLU}(W_1\, \mathrm{ReLU}(s))`, a softmax over the vocabulary.

**Receptive field.** The first layer sees :math:`k` past tokens and each block adds
:math:`(k-1)d_l`, so :math:`p(x_t \mid \cdot)` depends on :math:`x_{t-R}..x_{t-1}` with
:math:`R = k + \sum_l (k-1) d_l` (exponential in depth: :math:`R = 2^L + 1` for :math:`k=2`,
:math:`d_l = 2^l`). ``nll`` sums :math:`-\log p(x_t \mid x_{<t})` over :math:`t`, in nats.

**Sampling.** Generation is sequential. The *naive* sampler re-runs the network on the
last :math:`R+1` tokens for every new token: :math:`O(R)` positions per layer per step.
Most of that work repeats the previous step. The *cached* sampler ("Fast WaveNet") keeps,
for every layer, a queue of its last :math:`(k-1)d + 1` inputs; a new step pushes one
input per layer and reads its :math:`k` taps back from the queue: :math:`O(1)` work per layer.
Both give the same logits (up to rounding) and so the same samples for the same seed:
``sample(n, length=..., fast=True)`` runs the cached one, ``fast=False`` the naive one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from course_lib.models.autoregressive.histogram import sample_categorical


class CausalConv1d(nn.Conv1d):
    """A causal dilated convolution (B, C_in, T) -> (B, C_out, T).

    Output ``t`` sees inputs ``t - (k-1)*dilation .. t``, or ``.. t - 1`` with ``exclude_current``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 exclude_current: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.exclude_current = exclude_current
        self.span = (kernel_size - 1) * dilation + 1  # how many consecutive inputs one output sees
        self.left_pad = self.span - 1 + int(exclude_current)
        lags = torch.arange(kernel_size - 1, -1, -1) * dilation  # tap j reads the input (k-1-j)*d steps back
        self.register_buffer("tap_lags", lags, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[-1]
        y = super().forward(F.pad(x, (self.left_pad, 0)))  # (B, C_in, T + pad) -> (B, C_out, T + exclude)
        return y[..., :t]

    def init_queue(self, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """A zeroed circular buffer of the last ``span`` inputs, (B, C_in, span): zeros are the padding."""
        return torch.zeros(batch, self.in_channels, self.span, device=device, dtype=dtype)

    def step(self, x_t: Tensor, queue: Tensor, t: int) -> Tensor:
        """One output step from one new input, (B, C_in, 1) -> (B, C_out, 1), updating ``queue`` in place.

        ``x_t`` is the input at time ``t``, or at time ``t - 1`` (zeros at ``t = 0``) with ``exclude_current``.
        """
        queue[:, :, t % self.span] = x_t[:, :, 0]  # push: overwrite the oldest entry
        taps = queue.index_select(2, (t - self.tap_lags) % self.span)  # (B, C_in, k), oldest tap first
        return F.conv1d(taps, self.weight, self.bias)  # (B, C_in, k) -> (B, C_out, 1)


class ResidualBlock(nn.Module):
    """Gated dilated convolution with residual and skip outputs: h (B, C, T) -> (h', skip (B, S, T))."""

    def __init__(self, channels: int, skip_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.dilated = CausalConv1d(channels, 2 * channels, kernel_size, dilation)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def _gate(self, a: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        a_f, a_g = a.chunk(2, dim=1)  # (B, 2C, T) -> 2 x (B, C, T)
        z = torch.tanh(a_f) * torch.sigmoid(a_g)
        return h + self.residual(z), self.skip(z)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self._gate(self.dilated(h), h)

    def step(self, h_t: Tensor, queue: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """The same on one time step, (B, C, 1) -> ((B, C, 1), (B, S, 1))."""
        return self._gate(self.dilated.step(h_t, queue, t), h_t)


class WaveNet(nn.Module):
    """Autoregressive model of token sequences: ``forward`` (B, T) long -> logits (B, V, T).

    ``logits[:, :, t]`` parameterises :math:`p(x_t \\mid x_{<t})`. Layer ``l`` of ``n_layers`` has
    dilation ``2 ** (l % dilation_cycle)`` (``dilation_cycle=None``: no restart).

    ``vocab_size``: number of token ids V (the data's alphabet; may be given first, by position);
    ``channels``: width C of the embedding and residual stream; ``n_layers``: residual blocks;
    ``kernel_size``: taps k of every causal convolution; ``dilation_cycle``: layers after which the
    dilations restart at 1 (None: never); ``skip_channels``: width S of the skip stream and output
    head (None: C).
    """

    def __init__(self, vocab_size: int, *, channels: int = 64, n_layers: int = 8, kernel_size: int = 2,
                 dilation_cycle: int | None = None, skip_channels: int | None = None) -> None:
        super().__init__()
        if vocab_size < 2 or channels < 1 or n_layers < 1 or kernel_size < 1:
            raise ValueError(f"need vocab_size >= 2, channels >= 1, n_layers >= 1 and kernel_size >= 1, got "
                             f"{vocab_size}, {channels}, {n_layers} and {kernel_size}")
        if dilation_cycle is not None and dilation_cycle < 1:
            raise ValueError(f"dilation_cycle must be None (no restart) or >= 1, got {dilation_cycle}")
        if skip_channels is not None and skip_channels < 1:
            raise ValueError(f"skip_channels must be None (= channels) or >= 1, got {skip_channels}")
        cycle = dilation_cycle or n_layers
        self.vocab_size, self.kernel_size = int(vocab_size), int(kernel_size)
        self.dilations: list[int] = [2 ** (layer % cycle) for layer in range(n_layers)]
        skip_channels = skip_channels or channels
        self.embed = nn.Embedding(vocab_size, channels)
        self.input_conv = CausalConv1d(channels, channels, kernel_size, exclude_current=True)
        self.blocks = nn.ModuleList(ResidualBlock(channels, skip_channels, kernel_size, d) for d in self.dilations)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(skip_channels, skip_channels, 1), nn.ReLU(),
                                  nn.Conv1d(skip_channels, vocab_size, 1))

    @property
    def receptive_field(self) -> int:
        """How many past tokens :math:`p(x_t \\mid \\cdot)` depends on: :math:`k + \\sum_l (k-1) d_l`."""
        return self.kernel_size + sum((self.kernel_size - 1) * d for d in self.dilations)

    def _check_tokens(self, x: Tensor, name: str = "x") -> None:
        if not isinstance(x, Tensor) or x.dtype == torch.bool or x.dtype.is_floating_point or x.dtype.is_complex:
            kind = x.dtype if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a tensor of integer token ids (torch.long), got {kind}")
        if x.dim() != 2 or x.shape[1] == 0:
            raise ValueError(f"{name} must have shape (B, T) with T >= 1, got {tuple(x.shape)}")
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(f"{name} must hold token ids in [0, {self.vocab_size}), got values from {lo} to {hi}")

    def forward_embedded(self, e: Tensor) -> Tensor:
        """Logits from token embeddings: (B, C, T) -> (B, V, T)."""
        h = self.input_conv(e)  # (B, C, T), position t has seen e[:, :, <t]
        skip = 0.0
        for block in self.blocks:
            h, s = block(h)
            skip = skip + s  # (B, S, T)
        return self.head(skip)  # (B, S, T) -> (B, V, T)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of :math:`p(x_t \\mid x_{<t})` for every t: (B, T) long -> (B, V, T)."""
        self._check_tokens(x)
        e = self.embed(x.to(self.embed.weight.device)).transpose(1, 2)  # (B, T, C) -> (B, C, T)
        return self.forward_embedded(e)

    def nll(self, x: Tensor) -> Tensor:
        """Negative log-likelihood in nats per sequence (summed over T), (B, T) -> (B,)."""
        logits = self.forward(x)  # (B, V, T)
        return F.cross_entropy(logits, x.to(logits.device), reduction="none").sum(dim=1)

    # --- incremental evaluation (Fast WaveNet) ---------------------------------------------------

    def _init_queues(self, batch: int) -> list[Tensor]:
        w = self.embed.weight
        convs = [self.input_conv] + [block.dilated for block in self.blocks]
        return [conv.init_queue(batch, w.device, w.dtype) for conv in convs]

    def _step(self, u_t: Tensor, queues: list[Tensor], t: int) -> Tensor:
        """Logits at time t from the embedding ``u_t`` (B, C) of token t-1 (zeros at t=0): (B, V)."""
        h = self.input_conv.step(u_t.unsqueeze(-1), queues[0], t)  # (B, C, 1)
        skip = 0.0
        for block, queue in zip(self.blocks, queues[1:], strict=True):
            h, s = block.step(h, queue, t)
            skip = skip + s  # (B, S, 1)
        return self.head(skip).squeeze(-1)  # (B, S, 1) -> (B, V)

    def _input_at(self, seq: Tensor, t: int) -> Tensor:
        if t == 0:
            return torch.zeros(seq.shape[0], self.embed.embedding_dim, device=seq.device, dtype=self.embed.weight.dtype)
        return self.embed(seq[:, t - 1])  # (B, C)

    def _window_logits(self, seq: Tensor, t: int) -> Tensor:
        """The naive sampler's step: logits at time t from a forward pass over the last R+1 tokens, (B, V)."""
        window = seq[:, max(0, t - self.receptive_field): t + 1]  # token t itself is a placeholder it cannot see
        return self.forward(window)[:, :, -1]  # (B, V, W) -> (B, V)

    @torch.no_grad()
    def forward_cached(self, x: Tensor) -> Tensor:
        """``forward(x)`` computed one step at a time with the layer queues, (B, T) -> (B, V, T)."""
        self._check_tokens(x)
        x = x.to(self.embed.weight.device)
        queues = self._init_queues(x.shape[0])
        return torch.stack([self._step(self._input_at(x, t), queues, t) for t in range(x.shape[1])], dim=-1)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, length: int, prompt: Tensor | None = None,
               temperature: float = 1.0, fast: bool = True) -> Tensor:
        """Sample ``n`` sequences of ``length`` new tokens after ``prompt`` ((P,) or (n, P) long).

        Returns (n, P + length) long, the prompt included. ``temperature`` divides the logits;
        ``fast=True`` uses the Fast-WaveNet queues (the cached sampler), ``fast=False`` re-runs the
        network on the last ``receptive_field + 1`` tokens for each new token (the naive sampler).
        Both compute the same logits: same generator state => same samples.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if n < 1 or length < 0:
            raise ValueError(f"need n >= 1 and length >= 0, got n={n} and length={length}")
        device = self.embed.weight.device
        if prompt is None:
            prompt = torch.zeros(n, 0, dtype=torch.long, device=device)
        else:
            prompt = prompt.unsqueeze(0).expand(n, -1) if prompt.dim() == 1 else prompt
            self._check_tokens(prompt, name="prompt")
            if prompt.shape[0] != n:
                raise ValueError(f"prompt must have shape (P,) or ({n}, P), got {tuple(prompt.shape)}")
        n_prompt, total = prompt.shape[1], prompt.shape[1] + length
        seq = torch.zeros(n, total, dtype=torch.long, device=device)
        seq[:, :n_prompt] = prompt.to(device)
        queues = self._init_queues(n) if fast else None
        for t in range(n_prompt if not fast else 0, total):
            if fast:
                logits = self._step(self._input_at(seq, t), queues, t)  # (n, V)
            else:
                logits = self._window_logits(seq, t)  # (n, V)
            if t >= n_prompt:
                seq[:, t] = sample_categorical(F.softmax(logits / temperature, dim=-1), generator=generator)
        return seq

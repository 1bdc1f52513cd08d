"""The score network: a small bidirectional transformer over the time tokens of a window."""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class ScoreNet(ModelMixin, ConfigMixin):
    """Predicts the noise (or v) of a noisy window ``x`` (B, T, D) at diffusion times ``timesteps`` (B,).

    Each time step is one token: input projection, learned position embedding, plus the sinusoidal
    diffusion-time embedding (diffusers' ``Timesteps`` -> ``TimestepEmbedding``) added to every token;
    ``depth`` pre-norm encoder layers attend over all T tokens in both directions; a zero-initialised
    output projection makes the untrained net predict 0.

    With ``position_from_end=True`` a window of L <= ``length`` tokens takes the last L position
    embeddings instead of the first L: a model trained on windows cut right after the step it predicts
    (``train.scored_future``) then sees every predicted step at the same position.

    With ``mask_channel=True`` (masked mode) the input is ``concat(x·(1-m), x·m, m)`` for the known-mask
    m (B, T, D), the caller having put the clean known values into ``x``: known and noisy values enter
    through separate weights, so even the first linear layer can tell a clean +1 from a noisy one.
    """

    @register_to_config
    def __init__(self, dim: int, length: int, width: int = 128, depth: int = 4, heads: int = 4,
                 mlp_ratio: int = 4, dropout: float = 0.0, mask_channel: bool = False,
                 position_from_end: bool = False):
        super().__init__()
        if width % heads:
            raise ValueError(f"width ({width}) must be divisible by heads ({heads})")
        self.input = nn.Linear(dim * (3 if mask_channel else 1), width)
        self.position = nn.Parameter(torch.randn(1, length, width))
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(width, width)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=mlp_ratio * width, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D), (B,) or scalar, (B, T, D) bool | None -> (B, T, D)."""
        batch, length, dim = x.shape
        if dim != self.config.dim or length > self.config.length:
            raise ValueError(f"ScoreNet expects (B, T<={self.config.length}, {self.config.dim}) windows, "
                             f"got {tuple(x.shape)}")
        if self.config.mask_channel:
            if mask is None:
                raise ValueError("this ScoreNet was built with mask_channel=True and needs a mask")
            known = mask.to(x.dtype)
            x = torch.cat([x * (1 - known), x * known, known], dim=-1)
        timesteps = torch.as_tensor(timesteps, device=x.device).expand(batch)
        time = self.time_embed(self.time_proj(timesteps).to(x.dtype))
        position = self.position[:, self.config.length - length:] if self.config.position_from_end else \
            self.position[:, :length]
        h = self.input(x) + position + time[:, None, :]
        return self.output(self.norm(self.encoder(h)))

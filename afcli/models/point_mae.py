"""Point-MAE (Pang et al., ECCV 2022) as the CMAT backbone — config, model and save/load in one file.

Matches the original where CMAT does not say otherwise: FPS centres (first point index 0) and
``group_size`` nearest neighbours relative to their centre; a mini-PointNet patch embedding
(3→128→256, max-pool, concat → 512→``encoder_dims``, max-pool); a learned positional MLP on the
centres (3→128→width, GELU) re-added before every block; pre-norm blocks without qkv bias, MLP
ratio 4, drop path rising linearly to ``drop_path``; random masking of ``mask_ratio`` of the patches
per sample, the encoder seeing the visible ones only; a final LayerNorm.

Two reconstruction heads, chosen by ``reconstruction``:
- ``centers`` (the CMAT paper: "a lightweight MLP decoder ... predicting the geometric center
  coordinates of the masked patches"; L_rec "the MSE between the predicted centers and the
  ground-truth centers of these missing patches"). The paper does not say how an MLP knows *which*
  masked patch to predict; giving it the patch's centre would give the answer away. The MLP maps
  [max-pooled visible tokens, a learned slot embedding] to one centre per slot, and
  ``centre_target`` says which true centre a slot is scored against:
    * ``matched`` (afcli's reading of the paper, the default): the slots predict the *set* of masked
      centres; each slot is paired with one true centre by the assignment of least squared error
      (Hungarian), and the MSE is taken over those pairs — well defined whatever order the patches
      come in;
    * ``rank`` (afcli 0.1): slot k is the k-th masked patch in FPS order. FPS starts at point 0 of
      a randomly ordered cloud, so a rank is no fixed place and the target is nearly uninformative
      (predicting the origin scores almost as well: benchmarks/RESULTS.md).
- ``chamfer`` (Point-MAE and the CMAT authors' code): a 4-block transformer decoder over the
  visible tokens and mask tokens (with the masked centres' positional embedding) predicts each
  masked patch's ``group_size`` points relative to its centre.

Randomness (masking, drop path) comes in as per-sample noise tensors rather than from the global
RNG, so that a batch gives the same result whether it runs in one process or is split over ranks,
and a resumed run replays exactly (see ``afcli.engine``).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from afcli.errors import InputError
from afcli.models.pretrained import PretrainedModel
from afcli.ops import fps, gather_points, group, knn, three_nn_interpolate

RECONSTRUCTIONS = ("centers", "chamfer", "none")  # none: the encoder alone, for downstream models
CENTRE_TARGETS = ("matched", "rank")


@dataclass
class PointMAEConfig:
    num_group: int = 64
    group_size: int = 32
    trans_dim: int = 384
    encoder_dims: int = 384
    embed_width: int = 128  # the mini-PointNet's first width (Point-MAE: 128)
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    drop_path: float = 0.1
    mask_ratio: float = 0.6
    reconstruction: str = "centers"
    centre_target: str = "matched"
    decoder_depth: int = 4
    decoder_heads: int = 6

    def check(self) -> "PointMAEConfig":
        if self.reconstruction not in RECONSTRUCTIONS:
            raise InputError(
                f"model.reconstruction must be one of {', '.join(RECONSTRUCTIONS)}, got {self.reconstruction!r}"
            )
        if self.centre_target not in CENTRE_TARGETS:
            raise InputError(
                f"model.centre_target must be one of {', '.join(CENTRE_TARGETS)}, got {self.centre_target!r}"
            )
        if self.trans_dim % self.num_heads or self.trans_dim % self.decoder_heads:
            raise InputError(f"model.trans_dim {self.trans_dim} must divide by the head counts")
        if not 0 < self.mask_ratio < 1 or int(self.mask_ratio * self.num_group) < 1:
            raise InputError(
                f"model.mask_ratio {self.mask_ratio} must mask at least one of {self.num_group} patches and keep one"
            )
        return self

    @property
    def num_mask(self) -> int:
        return int(self.mask_ratio * self.num_group)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum over ranks of the incoming gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm whose batch statistics span every rank of a data-parallel job (all-reduced with
    autograd), so N processes normalise exactly like one process with the whole batch. Works with
    gloo on CPU, unlike ``nn.SyncBatchNorm``. Inside :func:`local_statistics` it uses this
    process's batch alone."""

    local = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if self.local or not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        ):
            return super().forward(x)
        dims = [0, 2] if x.dim() == 3 else [0]
        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device)
        stats = torch.cat([x.sum(dims), (x * x).sum(dims), count.view(1)])
        stats = _AllReduceSum.apply(stats)
        total = stats[-1]
        mean = stats[: x.shape[1]] / total
        var = stats[x.shape[1] : 2 * x.shape[1]] / total - mean * mean
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * total / (total - 1))
        shape = [1, -1] + [1] * (x.dim() - 2)
        normed = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return normed * self.weight.view(shape) + self.bias.view(shape)


@contextmanager
def local_statistics(model: nn.Module) -> Iterator[None]:
    """Train-mode passes of one process while the others wait (e.g. rank 0 re-estimating BatchNorm
    statistics before it validates): no all-reduce, which would wait for the idle ranks forever."""
    norms = [m for m in model.modules() if isinstance(m, BatchNorm1d)]
    for m in norms:
        m.local = True
    try:
        yield
    finally:
        for m in norms:
            m.local = False


class PatchEmbed(nn.Module):
    """Mini-PointNet: one token per neighbourhood (B, G, K, 3) → (B, G, C). Widths w → 2w, then
    4w → 4w → C; Point-MAE's w is 128. It runs on every grouped point and dominates a CPU step."""

    def __init__(self, dims: int, width: int = 128):
        super().__init__()
        self.first_conv = nn.Sequential(
            nn.Conv1d(3, width, 1), BatchNorm1d(width), nn.ReLU(inplace=True), nn.Conv1d(width, 2 * width, 1)
        )
        self.second_conv = nn.Sequential(
            nn.Conv1d(4 * width, 4 * width, 1),
            BatchNorm1d(4 * width),
            nn.ReLU(inplace=True),
            nn.Conv1d(4 * width, dims, 1),
        )

    def forward(self, neighbourhoods: torch.Tensor) -> torch.Tensor:
        batch, groups, size, _ = neighbourhoods.shape
        x = self.first_conv(neighbourhoods.reshape(batch * groups, size, 3).transpose(2, 1))
        pooled = x.max(dim=2, keepdim=True).values
        x = self.second_conv(torch.cat([pooled.expand(-1, -1, size), x], dim=1))
        return x.max(dim=2).values.reshape(batch, groups, -1)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = drop_path

    def _drop(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """Stochastic depth: drop the branch of sample b when its noise is below the drop rate."""
        if not self.training or self.drop_path == 0 or noise is None:
            return x
        keep = (noise >= self.drop_path).to(x.dtype) / (1 - self.drop_path)
        return x * keep.view(-1, 1, 1)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self._drop(
            self.proj(attended.transpose(1, 2).reshape(batch, tokens, dim)), None if noise is None else noise[:, 0]
        )
        return x + self._drop(self.mlp(self.norm2(x)), None if noise is None else noise[:, 1])


class Transformer(nn.Module):
    """Blocks with the positional embedding re-added before each one (Point-MAE)."""

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, rate) for rate in rates)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x + pos, None if noise is None else noise[:, i])
        return x


def matched_targets(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``target`` (B, M, 3) reordered so that row k is the true centre paired with predicted slot
    k by the one-to-one assignment of least total squared error (Hungarian, per sample): the MSE
    between the predicted and the true set of centres, whatever order either comes in."""
    from scipy.optimize import linear_sum_assignment

    with torch.no_grad():
        cost = torch.cdist(prediction.detach().float(), target.float()).pow(2).cpu().numpy()
    order = torch.stack([torch.as_tensor(linear_sum_assignment(c)[1]) for c in cost]).to(target.device)
    return gather_points(target, order)


def _position_mlp(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, dim))


class PointMAE(PretrainedModel, nn.Module):
    model_type = "point-mae"
    config_class = PointMAEConfig
    display_name = "Point-MAE"

    def __init__(self, config: PointMAEConfig):
        super().__init__()
        self.config = config.check()
        c = config
        self.patch_embed = PatchEmbed(c.encoder_dims, c.embed_width)
        self.reduce = nn.Linear(c.encoder_dims, c.trans_dim) if c.encoder_dims != c.trans_dim else nn.Identity()
        self.pos_embed = _position_mlp(c.trans_dim)
        self.encoder = Transformer(c.trans_dim, c.depth, c.num_heads, c.mlp_ratio, c.drop_path)
        self.norm = nn.LayerNorm(c.trans_dim)
        if c.reconstruction == "chamfer":
            self.mask_token = nn.Parameter(torch.zeros(1, 1, c.trans_dim))
            self.decoder_pos_embed = _position_mlp(c.trans_dim)
            self.decoder = Transformer(c.trans_dim, c.decoder_depth, c.decoder_heads, c.mlp_ratio, c.drop_path)
            self.decoder_norm = nn.LayerNorm(c.trans_dim)
            self.point_head = nn.Conv1d(c.trans_dim, 3 * c.group_size, 1)
        elif c.reconstruction == "centers":
            self.slot_embed = nn.Embedding(c.num_group, c.trans_dim)
            self.centre_head = nn.Sequential(
                nn.Linear(2 * c.trans_dim, c.trans_dim), nn.GELU(), nn.Linear(c.trans_dim, 3)
            )
        self.apply(self._init)
        if c.reconstruction == "chamfer":
            nn.init.trunc_normal_(self.mask_token, std=0.02)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # -- grouping ----------------------------------------------------------------------------------
    def group(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centres (B, G, 3), kNN indices (B, G, K) and centre-relative neighbourhoods (B, G, K, 3)."""
        c = self.config
        if points.shape[1] < c.group_size or points.shape[1] < c.num_group:
            raise InputError(f"{points.shape[1]} points cannot make {c.num_group} groups of {c.group_size}")
        centres = gather_points(points, fps(points, c.num_group))
        index, _ = knn(points, centres, c.group_size)
        return centres, index, group(points, index, centres)

    # -- encoder -----------------------------------------------------------------------------------
    def embed(self, neighbourhoods: torch.Tensor) -> torch.Tensor:
        """Patch embeddings (B, G, C) of every patch (BatchNorm statistics over all, as Point-MAE)."""
        return self.reduce(self.patch_embed(neighbourhoods))

    def transform(self, embeddings, centres, visible: torch.Tensor | None = None, drop_noise=None) -> torch.Tensor:
        """Encoder tokens (B, V, C) of the patches listed in ``visible`` (B, V) (all when None)."""
        if visible is not None:
            embeddings, centres = gather_points(embeddings, visible), gather_points(centres, visible)
        return self.norm(self.encoder(embeddings, self.pos_embed(centres), drop_noise))

    def encode(self, neighbourhoods, centres, visible: torch.Tensor | None = None, drop_noise=None) -> torch.Tensor:
        return self.transform(self.embed(neighbourhoods), centres, visible, drop_noise)

    def split(self, mask_noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Visible (B, G-M) and masked (B, M) patch indices, each in FPS order: the M patches with
        the smallest noise are masked."""
        order = mask_noise.argsort(dim=1)
        masked = order[:, : self.config.num_mask].sort(dim=1).values
        visible = order[:, self.config.num_mask :].sort(dim=1).values
        return visible, masked

    def forward(
        self,
        points: torch.Tensor,
        mask_noise: torch.Tensor,
        drop_noise: torch.Tensor | None = None,
        full_pass: bool = False,
    ) -> dict:
        """Everything the CMAT losses need for one batch of points (B, N, 3).

        ``mask_noise`` (B, G) uniform picks the masked patches; ``drop_noise`` (B, depth + decoder
        depth, 2) uniform drives stochastic depth (None: no drop path). ``full_pass`` also encodes
        every patch unmasked (``all_tokens``, B, G, C), for losses on the encoder's output of all M
        patches.
        """
        c = self.config
        centres, index, neighbourhoods = self.group(points)
        visible, masked = self.split(mask_noise)
        encoder_noise = None if drop_noise is None else drop_noise[:, : c.depth]
        embeddings = self.embed(neighbourhoods)
        tokens = self.transform(embeddings, centres, visible, encoder_noise)
        out = {
            "points": points,
            "centres": centres,
            "index": index,
            "visible": visible,
            "masked": masked,
            "tokens": tokens,
        }
        if full_pass:
            out["all_tokens"] = self.transform(embeddings, centres, None, encoder_noise)
        masked_centres = gather_points(centres, masked)
        if c.reconstruction == "none":
            raise InputError("this Point-MAE has no reconstruction head (reconstruction: none)")
        if c.reconstruction == "centers":
            pooled = tokens.max(dim=1).values.unsqueeze(1).expand(-1, masked.shape[1], -1)
            slots = masked if c.centre_target == "rank" else torch.arange(masked.shape[1], device=masked.device)
            slot_embeddings = self.slot_embed(slots).expand(masked.shape[0], -1, -1)
            out["prediction"] = self.centre_head(torch.cat([pooled, slot_embeddings], dim=-1))
            out["target"] = (
                masked_centres if c.centre_target == "rank" else matched_targets(out["prediction"], masked_centres)
            )
        else:
            decoder_noise = None if drop_noise is None else drop_noise[:, c.depth :]
            positions = self.decoder_pos_embed(torch.cat([gather_points(centres, visible), masked_centres], dim=1))
            x = torch.cat([tokens, self.mask_token.expand(points.shape[0], masked.shape[1], -1)], dim=1)
            x = self.decoder_norm(self.decoder(x, positions, decoder_noise))[:, -masked.shape[1] :]
            batch, count = masked.shape
            out["prediction"] = (
                self.point_head(x.transpose(1, 2)).transpose(1, 2).reshape(batch, count, c.group_size, 3)
            )
            out["target"] = gather_points(neighbourhoods.flatten(2), masked).reshape(batch, count, c.group_size, 3)
        return out

    # -- downstream --------------------------------------------------------------------------------
    def forward_features(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens of every patch (B, G, C), their centres (B, G, 3) and kNN indices (B, G, K)."""
        centres, index, neighbourhoods = self.group(points)
        return self.encode(neighbourhoods, centres), centres, index

    def point_features(self, points: torch.Tensor) -> torch.Tensor:
        """Per-point features (B, N, C): patch tokens carried to the points by three-NN interpolation."""
        tokens, centres, _ = self.forward_features(points)
        return three_nn_interpolate(points, centres, tokens)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The weights a downstream model takes over: everything but the reconstruction head."""
        head = ("mask_token", "decoder", "decoder_pos_embed", "decoder_norm", "point_head", "slot_embed", "centre_head")
        return {key: value for key, value in self.state_dict().items() if key.split(".")[0] not in head}

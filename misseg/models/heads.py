"""High-level extractors F_1..F_K: local features L -> one global feature H_k per class, all K at once."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from misseg.models.encoder import conv_block


class HighLevelHeads(nn.Module):
    """F_k = LayerNorm(Linear_k(flatten(pool(ReLU(BN(Conv_k(shared(L)))))))), for k = 1..K.

    `shared_layers` stride-2 Conv/BN/ReLU blocks are shared by all K extractors (the thesis's fig. 4.3
    leaves the split open; 1 is our default). The per-class conv of all K extractors is one conv with
    K * `width` output channels (K convolutions of the same input, stacked), followed by one BN, which
    is exactly K independent BNs. The per-class linear layers are one einsum over a (K, F, P) weight.
    An adaptive average pool to `pool` x `pool` makes the flatten size independent of the image size.
    bottleneck (a lever beyond the thesis, None = off): the per-class linear maps to `bottleneck` dims and one
    shared linear maps those to P, so each H_k can carry at most `bottleneck` numbers about its image.
    region (a lever beyond the thesis, off): MISegmenter conditions each H_k on the region it claims; the flag
    lives here because it is a property of how H is made (conf/model/heads/).
    center (a lever beyond the thesis, off): standardise the pooled features of each extractor over the images
    (BatchNorm without affine: batch statistics in training, running ones in evaluation) before the linear map.
    Why: after ReLU and average pooling they share a large positive mean, so Linear_k maps every image to nearly
    the same H_k (experiments/scale/README.md measures 83-99% of H's variance between the K features of one
    image, the rest between images): F_k become constant prototypes instead of describing class k in image x.

    L: (B, P, U, V) -> H: (B, K, P)
    """

    def __init__(
        self,
        K: int,
        P: int,
        width: int = 64,
        shared_layers: int = 1,
        pool: int = 4,
        bottleneck: int | None = None,
        region: bool = False,
        center: bool = False,
    ) -> None:
        super().__init__()
        blocks, c = [], P
        for _ in range(shared_layers):
            blocks.append(conv_block(c, width, 3, stride=2))
            c = width
        self.shared = nn.Sequential(*blocks)
        self.per_class = conv_block(c, K * width, 3, stride=1)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.center = nn.BatchNorm1d(K * width * pool * pool, affine=False) if center else nn.Identity()
        if bottleneck is not None and not 0 < bottleneck:
            raise ValueError(f"model.heads.bottleneck={bottleneck}: use a positive width (or null = no bottleneck)")
        fan_in, out = width * pool * pool, bottleneck or P
        self.weight = nn.Parameter(torch.randn(K, fan_in, out) / fan_in**0.5)
        self.bias = nn.Parameter(torch.zeros(K, out))
        self.up = nn.Linear(bottleneck, P) if bottleneck else nn.Identity()
        self.norm_weight = nn.Parameter(torch.ones(K, P))
        self.norm_bias = nn.Parameter(torch.zeros(K, P))
        self.K, self.P, self.width, self.region = K, P, width, region

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        B = L.shape[0]
        z = self.pool(self.per_class(self.shared(L)))  # (B, K*width, pool, pool)
        z = self.center(z.reshape(B, -1)).reshape(B, self.K, -1)  # (B, K, F): channel block k is extractor k
        H = self.up(torch.einsum("bkf,kfp->bkp", z, self.weight) + self.bias)
        H = F.layer_norm(H, (self.P,))
        return H * self.norm_weight + self.norm_bias

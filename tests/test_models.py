import torch

from misseg.models.encoder import LocalEncoder
from misseg.models.heads import HighLevelHeads
from misseg.models.segmenter import MISegmenter
from misseg.models.sobel import SobelInput


def test_shapes_and_stride():
    m = MISegmenter(K=3, P=16, d=4, encoder_depth=3, encoder_width=8, head_width=4)
    L, H = m(torch.randn(2, 3, 32, 48))
    assert L.shape == (2, 16, 8, 12) and H.shape == (2, 3, 16)
    classes, conf, p = m.eval().predict(torch.randn(2, 3, 32, 48))
    assert classes.shape == (2, 32, 48) and conf.shape == (2, 32, 48) and p.shape == (2, 3, 32, 48)
    assert torch.allclose(conf, p.max(1).values) and torch.equal(classes, p.argmax(1))
    assert m.tau == 16**-0.5


def test_batched_heads_equal_a_loop_over_k():
    torch.manual_seed(0)
    K, P, w = 3, 8, 4
    heads = HighLevelHeads(K, P, width=w, shared_layers=1, pool=2).eval()
    L = torch.randn(2, P, 8, 8)
    H = heads(L)
    z = heads.pool(heads.per_class(heads.shared(L)))
    for k in range(K):
        zk = z[:, k * w : (k + 1) * w].flatten(1)
        hk = zk @ heads.weight[k] + heads.bias[k]
        hk = torch.nn.functional.layer_norm(hk, (P,)) * heads.norm_weight[k] + heads.norm_bias[k]
        assert torch.allclose(H[:, k], hk, atol=1e-5)


def test_sobel_channels():
    s = SobelInput(True)
    x = torch.zeros(1, 3, 6, 6)
    x[..., 3:] = 1.0  # vertical edge: dx responds, dy does not
    y = s(x)
    assert y.shape == (1, 5, 6, 6)
    assert y[0, 3].abs().sum() > 0 and y[0, 4].abs().sum() == 0
    assert LocalEncoder(in_channels=5, P=4, d=2, depth=2, width=4)(y).shape == (1, 4, 3, 3)

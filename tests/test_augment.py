"""The on-device colour jitter (misseg.data.augment, kornia) and the worker path (torchvision v2) are one distribution.

Each of the four steps is compared with torchvision's functional op at a fixed factor (a degenerate range);
together, a batch equals torchvision's chain in one of the 24 step orders; and the hue shifts drawn with
strength 0.1 are spread like torchvision's (uniform in [-0.1, 0.1] turns).
"""

import itertools

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from misseg.data.augment import color_jitter
from misseg.data.batch_augment import augment_batch
from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD

PURE = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.2, 0.6, 0.9]])


def _images(seed: int = 0, B: int = 4) -> torch.Tensor:
    return torch.rand(B, 3, 6, 5, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("h", [-0.5, -0.25, -0.1, 0.05, 0.1, 1 / 3, 0.5])
def test_hue_shift_of_pure_colours_equals_torchvision_adjust_hue(h):
    x = PURE.view(-1, 3, 1, 1).expand(-1, 3, 2, 2).contiguous()
    out = color_jitter(x, 0, 0, 0, (h, h))
    assert torch.allclose(out, F.adjust_hue(x, h), atol=1e-5)


def test_hue_of_red_by_a_third_turn_is_green():  # the HSV semantics, not a chroma-plane rotation (YIQ)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    green = color_jitter(red, 0, 0, 0, (1 / 3, 1 / 3)).flatten()
    assert torch.allclose(green, torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)


@pytest.mark.parametrize(
    "step, factor, reference",
    [
        ("brightness", 1.3, F.adjust_brightness),
        ("brightness", 0.6, F.adjust_brightness),
        ("contrast", 1.4, F.adjust_contrast),
        ("contrast", 0.7, F.adjust_contrast),
        ("saturation", 1.4, F.adjust_saturation),
        ("saturation", 0.6, F.adjust_saturation),
        ("hue", 0.08, F.adjust_hue),
    ],
)
def test_each_step_equals_torchvision_functional(step, factor, reference):
    x = _images()
    kwargs = {"brightness": 0, "contrast": 0, "saturation": 0, "hue": 0, step: (factor, factor)}
    # 1e-4, not 1e-6: kornia's grey weighs red 0.299, torchvision's 0.2989 (5e-5 on the grey; 1/255 = 4e-3)
    assert torch.allclose(color_jitter(x, **kwargs), reference(x, factor), atol=1e-4)


def test_all_four_steps_equal_torchvision_chain_in_some_order():
    x = _images(1)
    b, c, s, h = 1.2, 0.8, 1.3, -0.07
    ops = [lambda y: F.adjust_brightness(y, b), lambda y: F.adjust_contrast(y, c), lambda y: F.adjust_saturation(y, s),
           lambda y: F.adjust_hue(y, h)]  # fmt: skip
    for seed in range(3):  # kornia draws one order per batch
        out = color_jitter(x, (b, b), (c, c), (s, s), (h, h), generator=torch.Generator().manual_seed(seed))
        errors = []
        for order in itertools.permutations(range(4)):
            y = x
            for i in order:
                y = ops[i](y)
            errors.append(float((out - y).abs().max()))
        assert min(errors) < 1e-4, errors


def test_drawn_hue_shifts_have_torchvision_spread():
    """1000 per-image hue draws of strength 0.1 on pure red, on-device vs the worker's v2.ColorJitter."""
    n = 1000
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).expand(n, 3, 1, 1).contiguous()
    device = color_jitter(red, 0, 0, 0, 0.1, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    worker = torch.stack([v2.ColorJitter(hue=0.1)(red[0]) for _ in range(n)])

    def hue_turns(rgb: torch.Tensor) -> torch.Tensor:  # red has hue 0; hue of (1, g, 0) / (1, 0, b) is +-g/6, b/6
        r, g, b = rgb.flatten(1).unbind(1)
        assert torch.allclose(r, torch.ones(n))
        return (g - b) / 6

    a, w = hue_turns(device).sort().values, hue_turns(worker).sort().values
    assert a.min() >= -0.1 - 1e-6 and a.max() <= 0.1 + 1e-6 and a.min() < -0.09 and a.max() > 0.09
    assert (a - w).abs().max() < 0.02  # quantiles agree (two-sample, n = 1000: KS-scale ~0.006)
    uniform = torch.linspace(-0.1, 0.1, n)
    assert (a - uniform).abs().max() < 0.01  # and both are uniform on [-0.1, 0.1]


def test_per_image_draws_differ_and_generator_reproduces():
    x = _images(2, B=8)
    g = torch.Generator().manual_seed(3)
    out = color_jitter(x, generator=g)
    again = color_jitter(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    ratios = (out.mean((1, 2, 3)) / x.mean((1, 2, 3))).unique()
    assert len(ratios) == 8  # one draw per image, not one per batch
    state = torch.get_rng_state()
    color_jitter(x, generator=g)
    assert torch.equal(torch.get_rng_state(), state)  # a seeded call leaves the global stream alone


def test_augment_batch_is_color_jitter_then_normalise():
    x = (_images(4) * 255).to(torch.uint8)
    a = augment_batch(x, 0.4, 0.1, generator=torch.Generator().manual_seed(5))
    b = color_jitter(x.float() / 255, 0.4, 0.4, 0.4, 0.1, generator=torch.Generator().manual_seed(5))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(a, (b - mean) / std, atol=1e-6)

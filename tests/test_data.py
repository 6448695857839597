import numpy as np
import pytest
import torch
from PIL import Image

from misseg.data.datamodule import FolderDataModule, SyntheticDataModule
from misseg.data.folder import DatasetError, FolderDataset
from misseg.data.synthetic import make_image
from misseg.data.transforms import apply, denormalize, eval_transform, train_transform


def coded_pair(h=37, w=53, seed=0):
    """An image whose red channel encodes the mask class (0 -> 30, 1 -> 220), irregular blobs."""
    rng = np.random.default_rng(seed)
    mask = (rng.random((h // 8 + 1, w // 8 + 1)) > 0.5).repeat(8, 0).repeat(8, 1)[:h, :w].astype(np.uint8)
    image = np.zeros((3, h, w), np.uint8)
    image[0] = np.where(mask == 1, 220, 30)
    return torch.from_numpy(image), torch.from_numpy(mask)


@pytest.mark.parametrize("resize", [None, 48])
def test_mask_follows_crop_flip_resize(resize):
    torch.manual_seed(0)
    image, mask = coded_pair()
    t = train_transform(24, resize_shorter=resize, flip=True, jitter=0.0, hue=0.0)
    flips_seen = set()
    for _ in range(20):
        x, m = apply(t, image, mask)
        assert x.shape == (3, 24, 24) and m.shape == (24, 24) and m.dtype == torch.int64
        assert agreement(x, m) > 0.999
        flips_seen.add(bool(torch.equal(m, m.flip(-1))))
    e, em = apply(eval_transform(24, resize), image, mask)
    assert agreement(e, em) > 0.999


def agreement(x, m):
    """Share of pixels where the class decoded from the image equals the mask, away from blurred edges."""
    red = denormalize(x[None])[0, 0]
    sure = (red < 0.3) | (red > 0.7)  # bilinear resizing blurs the image at class borders; the mask stays hard
    return ((red > 0.5).long() == m)[sure].float().mean()


def test_synthetic_deterministic_and_colour_uninformative():
    a, ma = make_image(3, 5, 32, 4)
    b, mb = make_image(3, 5, 32, 4)
    c, _ = make_image(4, 5, 32, 4)
    assert torch.equal(a, b) and torch.equal(ma, mb) and not torch.equal(a, c)
    # mean colour per class over many images is nearly identical: colour carries no class information
    sums, counts = torch.zeros(4, 3), torch.zeros(4)
    for i in range(200):
        img, m = make_image(0, i, 32, 4)
        for k in range(4):
            sel = m == k
            sums[k] += img[:, sel].float().sum(1)
            counts[k] += sel.sum()
    means = sums / counts[:, None]
    assert (means.max(0).values - means.min(0).values).max() < 20


def test_folder_dataset_and_holdout_split(folder_dataset):
    dm = FolderDataModule(
        root=str(folder_dataset),
        image_size=16,
        resize_shorter=20,
        batch_size=2,
        split="holdout",
        val_fraction=0.34,
        seed=1,
    )
    dm.setup()
    assert dm.num_classes == 3 and dm.classes == ["a", "b", "c"]
    tr, va = dm.split_indices()
    assert len(va) == 2 and not set(tr) & set(va) and len(tr) + len(va) == 6
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 16, 16) and batch["mask"].shape == (2, 16, 16)


def test_grayscale_becomes_rgb(folder_dataset):
    Image.fromarray(np.full((40, 52), 128, np.uint8)).save(folder_dataset / "images" / "000.png")
    image, _ = FolderDataset(folder_dataset).load(0)
    assert image.shape == (3, 40, 52)


def test_folder_errors_name_the_file(tmp_path, folder_dataset):
    with pytest.raises(DatasetError, match="images"):
        FolderDataset(tmp_path / "nowhere")
    (folder_dataset / "masks" / "001.png").unlink()
    with pytest.raises(DatasetError, match="001"):
        FolderDataset(folder_dataset)


def test_synthetic_datamodule_batches():
    dm = SyntheticDataModule(num_images=8, native_size=32, image_size=24, batch_size=4)
    dm.setup()
    b = next(iter(dm.train_dataloader()))
    assert b["image"].shape == (4, 3, 24, 24) and b["mask"].max() < 4


def test_augment_on_device_moves_colour_work_to_the_batch_hook():
    kwargs = dict(num_images=8, native_size=32, image_size=24, batch_size=8, augment=dict(flip=False, hue=0.0))
    dm_dev = SyntheticDataModule(**{**kwargs, "augment": dict(flip=False, hue=0.0, jitter=0.0, on_device=True)})
    dm_off = SyntheticDataModule(**{**kwargs, "augment": dict(flip=False, hue=0.0, jitter=0.0)})
    for m in (dm_dev, dm_off):
        m.setup()
    torch.manual_seed(1)
    raw = next(iter(dm_dev.train_dataloader()))
    assert raw["image"].dtype == torch.uint8  # the workers only crop (and flip)
    torch.manual_seed(1)
    ref = next(iter(dm_off.train_dataloader()))
    # without jitter, the hook's normalisation gives the per-sample pipeline's float images (same crops)
    out = dm_dev.on_after_batch_transfer(dict(raw), 0)
    assert out["image"].dtype == torch.float32 and torch.equal(out["mask"], ref["mask"])
    assert torch.allclose(out["image"], ref["image"], atol=1e-5)
    # with jitter the hook changes the colours of every image, leaves eval (float) batches alone
    dm_jit = SyntheticDataModule(**{**kwargs, "augment": dict(flip=False, hue=0.0, jitter=0.8, on_device=True)})
    jittered = dm_jit.on_after_batch_transfer(dict(raw), 0)["image"]
    assert (jittered - out["image"]).abs().flatten(1).amax(1).min() > 1e-3
    evaluated = {"image": out["image"].clone(), "mask": out["mask"]}
    assert torch.equal(dm_jit.on_after_batch_transfer(dict(evaluated), 0)["image"], out["image"])


def test_fit_trains_on_jittered_float_batches_with_augment_on_device():
    import pytorch_lightning as pl
    from conftest import tiny_module

    seen = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch["image"].dtype)

    dm = SyntheticDataModule(num_images=8, native_size=32, image_size=24, batch_size=4, augment=dict(on_device=True))
    module = tiny_module("mi", "K=4")
    trainer = pl.Trainer(
        accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[Record()],
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert seen == [torch.float32, torch.float32]

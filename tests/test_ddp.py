"""DDP correctness on CPU (gloo): the metric summed over ranks, gathered negatives, Lightning ddp_fork."""

import json
import os
import socket
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from conftest import tiny_module

from misseg.data.datamodule import SyntheticDataModule
from misseg.metrics.segmentation import HungarianSegmentationMetric
from misseg.objectives.mi import jsd_bound, mi_objective, soft_assignment, soft_global

TINY = ("K=4", "lr=1e-3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_gloo(rank: int, world: int, port: int) -> None:
    # forked workers (fast: no re-import) must not enter the OpenMP pool the parent already started
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)


# ---------------------------------------------------------------- the confusion-matrix metric over 2 ranks


def metric_data():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 5, (7, 9, 11), generator=g)
    target = torch.randint(0, 4, (7, 9, 11), generator=g)
    target[:, :2] = 255
    return pred, target


def metric_worker(rank: int, world: int, port: int, out: str) -> None:
    init_gloo(rank, world, port)
    pred, target = metric_data()
    mine = slice(0, 3) if rank == 0 else slice(3, 7)  # uneven shards, several update() calls on rank 1
    metric = HungarianSegmentationMetric(5, 4)
    for i in range(mine.start, mine.stop, 2):
        j = min(i + 2, mine.stop)
        metric.update(pred[i:j], target[i:j])
    result = metric.compute()  # torchmetrics all-reduces the "sum" states across ranks here
    Path(out, f"{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


def test_metric_summed_over_two_gloo_ranks_equals_one_process(tmp_path):
    mp.start_processes(metric_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    pred, target = metric_data()
    single = HungarianSegmentationMetric(5, 4)
    single.update(pred, target)
    expected = json.loads(json.dumps(single.compute()))
    for rank in (0, 1):
        got = json.loads((tmp_path / f"{rank}.json").read_text())
        assert got == expected  # bit-identical: integer confusion matrix, same matching
    assert expected["num_images"] == 7 and 0 < expected["miou"] < expected["pa"] < 1


# ---------------------------------------------------------------- negatives: local batch vs gathered across ranks


def loop_bound(L, S_anchor, S_pool, own):
    """Slow reference: joint over own positions, negatives = every pool image except `own[b]` at (i, j)."""
    B, _, U, V = L.shape
    pos = [-F.softplus(-(L[b, :, i, j] @ S_anchor[b, :, i, j])) for b in range(B) for i in range(U) for j in range(V)]
    neg = [
        F.softplus(L[b, :, i, j] @ S_pool[c, :, i, j])
        for b in range(B)
        for c in range(S_pool.shape[0])
        if c != own[b]
        for i in range(U)
        for j in range(V)
    ]
    return torch.stack(pos).mean() - torch.stack(neg).mean()


def test_negative_pool_with_offset_matches_loop_reference():
    torch.manual_seed(0)
    L, S_pool = torch.randn(2, 3, 2, 2), torch.randn(5, 3, 2, 2)
    got = jsd_bound(L, S_pool[2:4], S_neg=S_pool, self_offset=2)["mi"]
    assert torch.allclose(got, loop_bound(L, S_pool[2:4], S_pool, own=[2, 3]), atol=1e-5)


def test_global_negatives_equal_local_without_a_process_group():
    torch.manual_seed(1)
    L, H = torch.randn(4, 6, 3, 3), torch.randn(4, 3, 6)
    valid = torch.rand(4, 3, 3) > 0.3
    local = mi_objective(L, H, 0.5, valid, negatives="local")
    glob = mi_objective(L, H, 0.5, valid, negatives="global")
    assert torch.equal(local["loss"], glob["loss"])
    with pytest.raises(ValueError, match="model.objective.negatives='batch'"):
        mi_objective(L, H, 0.5, negatives="batch")


def negatives_data():
    g = torch.Generator().manual_seed(3)
    return torch.randn(6, 5, 2, 3, generator=g), torch.randn(6, 3, 5, generator=g)  # 2 ranks x B=3


def negatives_worker(rank: int, world: int, port: int, out: str) -> None:
    init_gloo(rank, world, port)
    L, H = negatives_data()
    L = L[3 * rank : 3 * rank + 3].clone().requires_grad_()
    H = H[3 * rank : 3 * rank + 3].clone().requires_grad_()
    loss = mi_objective(L, H, 0.4, negatives="global")["loss"]
    loss.backward()
    torch.save({"loss": loss.detach(), "gL": L.grad, "gH": H.grad}, Path(out, f"{rank}.pt"))
    dist.destroy_process_group()


def test_global_negatives_across_two_gloo_ranks(tmp_path):
    """Rank r's loss = its anchors against all 6 images of both ranks; gradient only through its own S."""
    mp.start_processes(negatives_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    L_all, H_all = negatives_data()
    S_all = soft_global(soft_assignment(L_all, H_all, 0.4), H_all).detach()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"{rank}.pt")
        mine = slice(3 * rank, 3 * rank + 3)
        L, H = L_all[mine].clone().requires_grad_(), H_all[mine].clone().requires_grad_()
        S = soft_global(soft_assignment(L, H, 0.4), H)
        pool = torch.cat([S if r == rank else S_all[3 * r : 3 * r + 3] for r in (0, 1)])
        ref = -loop_bound(L, S, pool, own=[3 * rank + b for b in range(3)])
        ref.backward()
        assert torch.allclose(got["loss"], ref, atol=1e-5)
        assert torch.allclose(got["gL"], L.grad, atol=1e-5) and torch.allclose(got["gH"], H.grad, atol=1e-5)
        local = mi_objective(L_all[mine], H_all[mine], 0.4)["loss"]  # only 3 images: a different value
        assert not torch.allclose(got["loss"], local)


def centroid_data():
    g = torch.Generator().manual_seed(5)
    return torch.randn(4, 6, 3, 3, generator=g), torch.randn(3, 6, generator=g)  # 2 ranks x B=2, K=3 centres


def centroid_worker(rank: int, world: int, port: int, out: str) -> None:
    from misseg.models.centroids import CentroidHeads

    init_gloo(rank, world, port)
    L, centres = centroid_data()
    heads = CentroidHeads(K=3, P=6, momentum=0.5)
    heads.centroids.copy_(centres)
    heads.seeded.fill_(True)
    heads.kmeans_step(L[2 * rank : 2 * rank + 2])
    torch.save(heads.centroids, Path(out, f"{rank}.pt"))
    dist.destroy_process_group()


def centroid_empty_worker(rank: int, world: int, port: int, out: str) -> None:
    from misseg.models.centroids import CentroidHeads

    init_gloo(rank, world, port)
    L, centres = centroid_data()
    heads = CentroidHeads(K=3, P=6, momentum=0.5)
    heads.centroids.copy_(centres)
    heads.seeded.fill_(True)
    valid = torch.full((2, 3, 3), rank == 0)  # rank 1's batch has no valid position
    heads.kmeans_step(L[2 * rank : 2 * rank + 2], valid)
    torch.save(heads.centroids, Path(out, f"{rank}.pt"))
    dist.destroy_process_group()


def test_a_rank_without_valid_positions_still_joins_the_centroid_step(tmp_path):
    """No hang, and both ranks end with the centres of rank 0's positions alone."""
    from misseg.models.centroids import CentroidHeads

    mp.start_processes(centroid_empty_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    L, centres = centroid_data()
    heads = CentroidHeads(K=3, P=6, momentum=0.5)
    heads.centroids.copy_(centres)
    heads.seeded.fill_(True)
    k = torch.einsum("bpuv,kp->bkuv", L[:2], F.layer_norm(centres, (6,))).argmax(1)
    assert len(k.unique()) == 3  # no class is re-seeded
    heads.kmeans_step(L[:2])
    for rank in (0, 1):
        assert torch.allclose(torch.load(tmp_path / f"{rank}.pt"), heads.centroids, atol=1e-6)


def test_centroid_heads_step_on_the_batch_of_all_ranks(tmp_path):
    """Each rank sees half the batch; both end with the centres one process gets from the whole batch."""
    from misseg.models.centroids import CentroidHeads

    mp.start_processes(centroid_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    L, centres = centroid_data()
    heads = CentroidHeads(K=3, P=6, momentum=0.5)
    heads.centroids.copy_(centres)
    heads.seeded.fill_(True)
    k = torch.einsum("bpuv,kp->bkuv", L, F.layer_norm(centres, (6,))).argmax(1)
    assert len(k.unique()) == 3  # no class is re-seeded (that draw is rank 0's own)
    heads.kmeans_step(L)
    for rank in (0, 1):
        assert torch.allclose(torch.load(tmp_path / f"{rank}.pt"), heads.centroids, atol=1e-6)


# ---------------------------------------------------------------- Lightning: ddp_fork (= ddp_spawn without re-import)


class SingleThread(pl.Callback):
    """ddp_fork children: one intra-op thread (see init_gloo)."""

    def setup(self, trainer, pl_module, stage):
        torch.set_num_threads(1)


def tiny_datamodule(num_images: int = 8) -> SyntheticDataModule:
    # 3 per eval batch gives uneven batches per rank (8 images: 3 + 1 each; 7 images: 3 + 1 and 3)
    return SyntheticDataModule(
        num_images=num_images,
        native_size=32,
        num_classes=4,
        image_size=32,
        batch_size=2,
        eval_batch_size=3,
        augment=dict(jitter=0.0, hue=0.0),
    )


def validate(devices: int, num_images: int = 8) -> dict:
    pl.seed_everything(0)
    module = tiny_module("mi", *TINY)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_fork" if devices > 1 else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SingleThread()],
    )
    trainer.validate(module, datamodule=tiny_datamodule(num_images), verbose=False)
    assert trainer.world_size == devices
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


@pytest.mark.parametrize("num_images", [8, 7])
def test_ddp_two_processes_give_the_one_process_pa_and_miou(num_images):
    # 7 images: not divisible by the 2 ranks; a padding sampler would count one image twice
    one, two = validate(1, num_images), validate(2, num_images)
    assert set(one) == {"val/pa", "val/miou"}
    assert one == two  # exactly: the confusion matrix is summed over ranks before the matching


def test_ddp_trains_with_gathered_negatives(tmp_path):
    pl.seed_everything(0)
    module = tiny_module("mi", *TINY, "objective.negatives=global")
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        default_root_dir=tmp_path,
        callbacks=[SingleThread()],
    )
    trainer.fit(module, datamodule=tiny_datamodule())
    # the launcher copies rank 0's trained weights and the logged metrics back into this process
    assert torch.isfinite(trainer.callback_metrics["train/loss_epoch"])
    assert any(not torch.equal(before[k], v) for k, v in module.state_dict().items())

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from PIL import Image

from misseg.data import coco
from misseg.data.cache import CachedFolderDataset, write_cache
from misseg.data.datamodule import FolderDataModule
from misseg.data.folder import DatasetError, FolderDataset
from misseg.data.prepare import main as prepare

# Expected coarse index (0..26) of every fine id, written independently of misseg/data/coco.py from the
# COCO-Stuff hierarchy (run lengths for things 0..90, one entry per stuff id 91..181).
THINGS_RUNS = [(9, 1), (11, 8), (8, 6), (7, 10), (6, 8), (10, 10), (5, 8), (2, 10), (3, 10), (0, 6), (1, 6), (4, 8)]
STUFF_EXPECTED = [
    17, 17, 22, 20, 20, 22, 15, 25, 16, 13, 12, 12, 17, 17, 23, 15, 15, 17, 15, 21,  # banner .. dirt
    15, 25, 13, 13, 13, 13, 13, 22, 26, 14, 14, 15, 22, 21, 21, 24, 20, 22, 15, 17,  # door-stuff .. mat
    16, 15, 22, 24, 21, 17, 25, 16, 21, 17, 22, 16, 21, 21, 25, 21, 26, 21, 24, 20,  # metal .. roof
    17, 14, 21, 26, 15, 23, 20, 21, 24, 15, 24, 22, 25, 15, 20, 17, 17, 22, 14, 18,  # rug .. wall-brick
    18, 18, 18, 18, 18, 18, 26, 26, 19, 19, 24,  # wall-concrete .. wood
]  # fmt: skip


def expected_fine_to_coarse() -> np.ndarray:
    things = [c for c, n in THINGS_RUNS for _ in range(n)]
    return np.array(things + STUFF_EXPECTED)


def test_every_fine_id_maps_to_its_coarse_class():
    expected = expected_fine_to_coarse()
    assert expected.shape == (182,) and len(coco.FINE_NAMES) == 182
    np.testing.assert_array_equal(coco.FINE_TO_COARSE27, expected)
    fine = np.concatenate([np.arange(182), [255]]).astype(np.uint8)
    np.testing.assert_array_equal(coco.remap(fine, coco.LUT_FINE_TO_27), np.append(expected, 255))
    stuff15 = coco.remap(fine, coco.LUT_FINE_TO_STUFF15)
    assert (stuff15[:91] == 255).all() and stuff15[182] == 255  # things and unlabeled -> ignore
    np.testing.assert_array_equal(stuff15[91:182], expected[91:] - 12)
    name = {n: i for i, n in enumerate(coco.FINE_NAMES)}
    for fine_name, cls in [("clouds", "sky"), ("sky-other", "sky"), ("fog", "water"), ("carpet", "floor"),
                           ("wood", "solid"), ("light", "furniture"), ("cardboard", "rawmaterial")]:  # fmt: skip
        assert coco.STUFF15[stuff15[name[fine_name]]] == cls
    assert all(coco.STUFF15[stuff15[f]] == "wall" for f in range(170, 177))
    assert [c.replace("-stuff", "").replace("-", "") for c in coco.COARSE27[12:]] == list(coco.STUFF15)


@pytest.mark.skipif(not (SHARED_DATA / "coco_stuff27").is_dir(), reason="shared coco_stuff27 not present")
def test_hierarchy_agrees_with_shared_panoptic_table():
    root = SHARED_DATA / "coco_stuff27"
    assert (root / "classes.txt").read_text().split() == list(coco.COARSE27)
    rows = [line.split("\t") for line in (root / "fine_to_coarse.tsv").read_text().splitlines()[1:]]
    checked = 0
    for pid, name, _, _, coarse, _ in rows:
        if int(pid) <= 182:  # unmerged panoptic categories keep the COCO-Stuff id
            assert coco.FINE_NAMES[int(pid) - 1] == name
            assert coco.FINE_TO_COARSE27[int(pid) - 1] == int(coarse), name
            checked += 1
    assert checked >= 110


# ---------------------------------------------------------------------------------------------------------
# tiny synthetic COCO tree
STUFF_IDS = (105, 156, 170, 176, 181, 119, 100)  # clouds, sky-other, wall-brick, wall-wood, wood, fog, carpet


def fine_map(h: int, w: int, stuff_rows: int) -> np.ndarray:
    """The first `stuff_rows` rows cycle through STUFF_IDS in column bands; then person (0), tv (71), 255."""
    m = np.full((h, w), 255, np.uint8)
    bands = np.array(STUFF_IDS, np.uint8)[np.arange(w) * len(STUFF_IDS) // w]
    m[:stuff_rows] = bands
    rest = h - stuff_rows
    m[stuff_rows : stuff_rows + rest // 3] = 0
    m[stuff_rows + rest // 3 : stuff_rows + 2 * (rest // 3)] = 71
    return m


# id: (split, h, w, stuff rows); the IIC rule (both sides >= 360, >= 75% stuff) keeps a, d, e
TREE = {
    "000000000001": ("train2017", 400, 380, 320),  # 80% stuff -> kept
    "000000000002": ("train2017", 400, 380, 280),  # 70% -> dropped
    "000000000003": ("train2017", 350, 500, 350),  # 100% but 350 px side -> dropped
    "000000000004": ("train2017", 360, 360, 270),  # exactly 75%, 360 px -> kept (>=)
    "000000000005": ("val2017", 380, 420, 342),  # 90% -> kept
}


def rect_poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO crowd format: run lengths over the column-major flattened mask, starting with a run of zeros."""
    flat = mask.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    if flat[0] == 1:
        runs = [0] + runs
    return {"counts": runs, "size": list(mask.shape)}


@pytest.fixture
def coco_tree(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    rng = np.random.default_rng(0)
    for id_, (split, h, w, rows) in TREE.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / "stuffthingmaps_trainval2017" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / split / f"{id_}.jpg")
        Image.fromarray(fine_map(h, w, rows)).save(root / "stuffthingmaps_trainval2017" / split / f"{id_}.png")
    crowd = np.zeros((400, 380), np.uint8)
    crowd[300:390, 20:200] = 1  # 16,200 px
    anns = {
        "train2017": [
            # image 1: person polygon 200x150 px + crowd RLE 16,200 px -> 46,200 / 152,000 = 30.4% -> kept
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": rect_poly(100, 50, 300, 200)},
            {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": uncompressed_rle(crowd)},
            {"id": 3, "image_id": 1, "category_id": 3, "iscrowd": 0, "segmentation": rect_poly(0, 0, 380, 400)},
            # image 2: 10% persons -> dropped; image 3: 50% persons but 350 px side -> dropped
            {"id": 4, "image_id": 2, "category_id": 1, "iscrowd": 0, "segmentation": rect_poly(0, 0, 38, 400)},
            {"id": 5, "image_id": 3, "category_id": 1, "iscrowd": 0, "segmentation": rect_poly(0, 0, 250, 350)},
        ],
        "val2017": [  # image 5: 60% persons -> kept; image 4 (train) has no person
            {"id": 6, "image_id": 5, "category_id": 1, "iscrowd": 0, "segmentation": rect_poly(0, 0, 252, 380)},
        ],
    }
    (root / "annotations").mkdir()
    for split in ("train2017", "val2017"):
        images = [{"id": int(i), "file_name": f"{i}.jpg", "height": h, "width": w}
                  for i, (s, h, w, _) in TREE.items() if s == split]  # fmt: skip
        data = {"images": images, "annotations": anns[split], "categories": [{"id": 1, "name": "person"}]}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def ids_in(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "images").iterdir())


@pytest.mark.parametrize("workers", ["0", "2"])
def test_stuff15_rule_selects_and_maps(coco_tree, tmp_path, workers):
    out = tmp_path / "s15"
    manifest = prepare(["coco-stuff15", "--coco-root", str(coco_tree), "--out", str(out), "--workers", workers,
                        "--scale", "0"])  # fmt: skip
    assert ids_in(out) == ["000000000001", "000000000004", "000000000005"]
    assert manifest["count"] == 3 and manifest["count_per_split"] == {"train2017": 2, "val2017": 1}
    assert (out / "classes.txt").read_text().split() == list(coco.STUFF15)
    assert "75" in manifest["rule"] or "min_stuff_fraction" in manifest["rule"]
    assert manifest["command"].startswith("python -m misseg.data.prepare coco-stuff15 --coco-root")
    mask = np.array(Image.open(out / "masks" / "000000000001.png"))
    fine = fine_map(400, 380, 320)
    expected = {105: 11, 156: 11, 170: 6, 176: 6, 181: 12, 119: 14, 100: 1, 0: 255, 71: 255, 255: 255}
    for f, c in expected.items():
        assert (mask[fine == f] == c).all(), f
    freq = manifest["class_pixel_frequency"]
    assert abs(sum(freq.values()) - 1) < 1e-4 and freq["ceiling"] == 0 and freq["sky"] > 0.2


def test_curated_lists_override_the_rule_and_prescale(coco_tree, tmp_path):
    lists = tmp_path / "curated"
    for split, ids in (("train2017", ["000000000002", "000000000003"]), ("val2017", ["000000000005"])):
        (lists / split).mkdir(parents=True)
        (lists / split / "Coco164kFull_Stuff_Coarse_7.txt").write_text("\n".join(ids) + "\n")
    out = tmp_path / "s15"
    prepare(["coco-stuff15", "--coco-root", str(coco_tree), "--out", str(out), "--lists", str(lists),
             "--workers", "0"])  # fmt: skip
    assert ids_in(out) == ["000000000002", "000000000003", "000000000005"]
    # IIC's pre-scaling by 0.33: 400 x 380 -> 132 x 125 (cv2 rounding), mask nearest
    img = Image.open(out / "images" / "000000000002.png")
    assert img.size == (125, 132)
    assert np.array(Image.open(out / "masks" / "000000000002.png")).shape == (132, 125)


def test_stuff27_split_lists_and_cached_datamodule(coco_tree, tmp_path):
    out = tmp_path / "s27"
    prepare(["coco-stuff27", "--coco-root", str(coco_tree), "--out", str(out), "--workers", "0", "--cache"])
    # train2017 = every train image ("full"), val2017 = IIC rule
    assert (out / "splits" / "train.txt").read_text().split() == [f"00000000000{i}" for i in range(1, 5)]
    assert (out / "splits" / "val.txt").read_text().split() == ["000000000005"]
    mask = np.array(Image.open(out / "masks" / "000000000005.png"))
    assert set(np.unique(mask)) <= {9, 0, 255} | {int(coco.FINE_TO_COARSE27[f]) for f in STUFF_IDS}
    assert {9, 0} <= set(np.unique(mask).tolist())  # person and electronic (tv) stay classes in the 27 set
    dm = FolderDataModule(root=str(out), cache=True, split="lists", image_size=64, resize_shorter=None, batch_size=2,
                          num_workers=0)  # fmt: skip
    dm.setup()
    assert dm.num_classes == 27 and dm.train_set.ids == [f"00000000000{i}" for i in range(1, 5)]
    assert dm.val_set.ids == ["000000000005"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 64, 64)


def test_persons_polygon_and_crowd_rle(coco_tree, tmp_path):
    crowd = np.zeros((400, 380), np.uint8)
    crowd[300:390, 20:200] = 1
    ann = [{"category_id": 1, "segmentation": uncompressed_rle(crowd)}]
    np.testing.assert_array_equal(coco.person_mask(ann, 400, 380), crowd)  # crowd RLE decoded exactly
    poly = coco.person_mask([{"category_id": 1, "segmentation": rect_poly(100, 50, 300, 200)}], 400, 380)
    rect = np.zeros_like(poly)
    rect[50:200, 100:300] = 1
    assert (poly != rect).sum() <= 2 * (200 + 150)  # pycocotools rasterises the polygon up to its border pixels
    assert coco.person_mask([{"category_id": 3, "segmentation": rect_poly(0, 0, 10, 10)}], 20, 20).sum() == 0

    out = tmp_path / "persons"
    manifest = prepare(["coco-persons", "--coco-root", str(coco_tree), "--out", str(out), "--workers", "0",
                        "--scale", "0"])  # fmt: skip
    assert ids_in(out) == ["000000000001", "000000000005"]
    assert (out / "classes.txt").read_text().split() == ["background", "person"]
    mask = np.array(Image.open(out / "masks" / "000000000001.png"))
    assert set(np.unique(mask)) == {0, 1} and mask[350, 100] == 1 and mask[100, 200] == 1 and mask[10, 10] == 0
    assert abs(manifest["class_pixel_frequency"]["person"] - (46200 + 95760) / (152000 + 159600)) < 0.005
    assert manifest["parameters"]["min_person_fraction"] == 0.3


def test_cache_round_trips_bit_exactly(folder_dataset, tmp_path):
    Image.fromarray(np.zeros((23, 31, 3), np.uint8) + 7).save(folder_dataset / "images" / "000.png")  # sizes differ
    Image.fromarray(np.ones((23, 31), np.uint8)).save(folder_dataset / "masks" / "000.png")
    write_cache(folder_dataset)
    folder, cached = FolderDataset(folder_dataset), CachedFolderDataset(folder_dataset / "cache")
    assert cached.ids == folder.ids and cached.classes == folder.classes
    for i in range(len(folder)):
        (a, ma), (b, mb) = folder.load(i), cached.load(i)
        assert a.dtype == b.dtype == torch.uint8 and torch.equal(a, b) and torch.equal(ma, mb)
    assert cached.load(0)[0].shape == (3, 23, 31)
    (folder_dataset / "cache" / "masks.u8").write_bytes(b"\0" * 10)
    with pytest.raises(DatasetError, match="masks.u8"):
        CachedFolderDataset(folder_dataset / "cache")


def make_27_folder(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.txt").write_text("\n".join(coco.COARSE27) + "\n")
    values = np.array(list(range(27)) + [255], np.uint8)
    for i in range(2):
        mask = np.tile(values, (10, 1))
        Image.fromarray(np.full((10, 28, 3), 40 * i, np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return root


def check_stuff15_view(src: Path, out: Path) -> None:
    for id_ in ids_in(out):
        m27 = np.array(Image.open(src / "masks" / f"{id_}.png"))
        m15 = np.array(Image.open(out / "masks" / f"{id_}.png"))
        expected = np.where((m27 >= 12) & (m27 <= 26), m27.astype(int) - 12, 255)
        np.testing.assert_array_equal(m15, expected)


def test_stuff15_view_of_a_27_folder(tmp_path):
    src = make_27_folder(tmp_path / "s27")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = tmp_path / "view"
    manifest = prepare(["stuff15-from-27", "--src", str(src), "--out", str(out), "--scale", "0"])
    check_stuff15_view(src, out)
    assert manifest["count"] == 2 and (out / "classes.txt").read_text().split() == list(coco.STUFF15)
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # source untouched
    with pytest.raises(SystemExit):
        prepare(["stuff15-from-27", "--src", str(src), "--out", str(src / "inner")])


@pytest.mark.skipif(not (SHARED_DATA / "coco_stuff27").is_dir(), reason="shared coco_stuff27 not present")
def test_stuff15_view_of_shared_coco_stuff27(tmp_path):
    src, out = SHARED_DATA / "coco_stuff27", tmp_path / "view"
    prepare(["stuff15-from-27", "--src", str(src), "--out", str(out), "--scale", "0", "--limit", "4"])
    check_stuff15_view(src, out)
    ds = FolderDataset(out)
    assert len(ds) == 4 and ds.classes == list(coco.STUFF15)


def test_missing_dataset_names_the_prepare_command(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from misseg.runs.config import config_dir

    for name in ("coco_stuff15", "coco_stuff27", "coco_persons"):
        with initialize_config_dir(config_dir(), version_base="1.3"):
            cfg = compose("train", overrides=[f"experiment={name}", f"paths.data_dir={tmp_path}"])
        assert cfg.data.batch_size == 64 and cfg.model.P == 2048 and cfg.trainer.max_epochs == 300
        assert cfg.model.K == {"coco_stuff15": 15, "coco_stuff27": 27, "coco_persons": 2}[name]
        with pytest.raises(Exception, match=f"misseg.data.prepare {name.replace('_', '-')} --coco-root") as err:
            instantiate(cfg.data)
        assert isinstance(err.value.__cause__, DatasetError)  # Hydra wraps the error raised at once by the data


def test_eval_crop_pads_small_images_with_ignore():
    from misseg.data.transforms import apply, eval_transform

    # COCO pre-scaled by 0.33 can be smaller than the 128 crop: the padding must be ignore, not class 0
    image, mask = torch.zeros(3, 10, 20, dtype=torch.uint8), torch.full((10, 20), 3, dtype=torch.uint8)
    _, m = apply(eval_transform(16), image, mask)
    assert m.shape == (16, 16) and (m[:3] == 255).all() and (m[13:] == 255).all() and (m[3:13] == 3).all()

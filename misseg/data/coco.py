"""COCO-Stuff label hierarchy, IIC's image selection rule and COCO person masks (pure functions, no I/O).

COCO-Stuff pixel maps (`stuffthingmaps_trainval2017`) store the *fine* label = COCO category id - 1:
0..90 are the 91 thing ids (80 of them used by COCO 2017 instances), 91..181 the 91 stuff classes,
255 = unlabeled. The coarse level is the COCO-Stuff hierarchy's supercategories: 12 thing ones (0..11)
then 15 stuff ones (12..26), in the order IIC defined and PiCIE/STEGO kept ("COCO-Stuff-27").
IIC's "COCO-Stuff" (15 classes, the thesis's set) keeps only the stuff supercategories, reindexed 0..14.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

IGNORE = 255

# Fine label names, index = COCO-Stuff category id - 1 (COCO-Stuff labels.txt without "0: unlabeled").
FINE_NAMES: tuple[str, ...] = (
    # things 0..90
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella", "shoe", "eye glasses",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
    "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window", "desk",
    "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush", "hair brush",
    # stuff 91..181
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain",
    "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile",
    "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other",
    "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin",
    "net", "paper", "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing",
    "railroad", "river", "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other",
    "skyscraper", "snow", "solid-other", "stairs", "stone", "straw", "structural-other", "table", "tent",
    "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete", "wall-other", "wall-panel",
    "wall-stone", "wall-tile", "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
)  # fmt: skip
NUM_FINE = 182
FIRST_STUFF_FINE = 91
FIRST_STUFF_COARSE = 12

# The 27 coarse classes in the COCO-Stuff-27 benchmark order (IIC's coarse indices, kept by PiCIE/STEGO);
# names as in ../shared/data/coco_stuff27/classes.txt.
COARSE27: tuple[str, ...] = (
    "electronic", "appliance", "food-things", "furniture-things", "indoor", "kitchen", "accessory", "animal",
    "outdoor", "person", "sports", "vehicle",
    "ceiling", "floor", "food-stuff", "furniture-stuff", "raw-material", "textile", "wall", "window",
    "building", "ground", "plant", "sky", "solid", "structural", "water",
)  # fmt: skip
# IIC's 15 stuff classes, IIC's names and order (= COARSE27[12:]).
STUFF15: tuple[str, ...] = (
    "ceiling", "floor", "food", "furniture", "rawmaterial", "textile", "wall", "window", "building", "ground",
    "plant", "sky", "solid", "structural", "water",
)  # fmt: skip
PERSONS: tuple[str, ...] = ("background", "person")


def _fine_ids(*names: str) -> list[int]:
    return [FINE_NAMES.index(n) for n in names]


# COCO-Stuff hierarchy: coarse class -> its fine members. Things follow the COCO supercategories (the 11
# thing ids COCO 2017 never annotates are placed as in the COCO-Stuff hierarchy); stuff follows
# COCO-Stuff's cocostuff hierarchy (e.g. clouds -> sky, fog -> water, hill/mountain/rock/stone/wood -> solid).
_MEMBERS: dict[str, list[int]] = {
    "electronic": list(range(71, 77)),  # tv .. cell phone
    "appliance": list(range(77, 83)),  # microwave .. blender
    "food-things": list(range(51, 61)),  # banana .. cake
    "furniture-things": list(range(61, 71)),  # chair .. door
    "indoor": list(range(83, 91)),  # book .. hair brush
    "kitchen": list(range(43, 51)),  # bottle .. bowl
    "accessory": list(range(25, 33)),  # hat .. suitcase
    "animal": list(range(15, 25)),  # bird .. giraffe
    "outdoor": list(range(9, 15)),  # traffic light .. bench
    "person": [0],
    "sports": list(range(33, 43)),  # frisbee .. tennis racket
    "vehicle": list(range(1, 9)),  # bicycle .. boat
    "ceiling": _fine_ids("ceiling-other", "ceiling-tile"),
    "floor": _fine_ids("carpet", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood"),
    "food-stuff": _fine_ids("food-other", "fruit", "salad", "vegetable"),
    "furniture-stuff": _fine_ids(
        "cabinet", "counter", "cupboard", "desk-stuff", "door-stuff", "furniture-other", "light", "mirror-stuff",
        "shelf", "stairs", "table",
    ),
    "raw-material": _fine_ids("cardboard", "metal", "paper", "plastic"),
    "textile": _fine_ids(
        "banner", "blanket", "cloth", "clothes", "curtain", "mat", "napkin", "pillow", "rug", "textile-other",
        "towel",
    ),
    "wall": _fine_ids(
        "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood",
    ),
    "window": _fine_ids("window-blind", "window-other"),
    "building": _fine_ids("bridge", "building-other", "house", "roof", "skyscraper", "tent"),
    "ground": _fine_ids(
        "dirt", "gravel", "ground-other", "mud", "pavement", "platform", "playingfield", "railroad", "road", "sand",
        "snow",
    ),
    "plant": _fine_ids("branch", "bush", "flower", "grass", "leaves", "moss", "plant-other", "straw", "tree"),
    "sky": _fine_ids("clouds", "sky-other"),
    "solid": _fine_ids("hill", "mountain", "rock", "solid-other", "stone", "wood"),
    "structural": _fine_ids("cage", "fence", "net", "railing", "structural-other"),
    "water": _fine_ids("fog", "river", "sea", "water-other", "waterdrops"),
}  # fmt: skip


def _build_fine_to_coarse() -> np.ndarray:
    table = np.full(NUM_FINE, -1, np.int64)
    for coarse, fines in enumerate(_MEMBERS[name] for name in COARSE27):
        if (table[fines] != -1).any():
            raise AssertionError(f"fine ids {fines} of {COARSE27[coarse]} are already assigned")
        table[fines] = coarse
    if (table == -1).any():
        raise AssertionError(f"fine ids without a coarse class: {np.flatnonzero(table == -1).tolist()}")
    return table


FINE_TO_COARSE27: np.ndarray = _build_fine_to_coarse()  # (182,) coarse index 0..26 of every fine id


def _lut(values: np.ndarray) -> np.ndarray:
    """(182,) class per fine id (-1 = ignore) -> (256,) uint8 lookup table; 182..255 -> IGNORE."""
    lut = np.full(256, IGNORE, np.uint8)
    lut[:NUM_FINE] = np.where(values >= 0, values, IGNORE)
    return lut


LUT_FINE_TO_27: np.ndarray = _lut(FINE_TO_COARSE27)
LUT_FINE_TO_STUFF15: np.ndarray = _lut(np.where(FINE_TO_COARSE27 >= FIRST_STUFF_COARSE, FINE_TO_COARSE27 - 12, -1))
LUT_27_TO_STUFF15: np.ndarray = np.full(256, IGNORE, np.uint8)  # coarse 0..11 (things) -> 255, 12..26 -> 0..14
LUT_27_TO_STUFF15[FIRST_STUFF_COARSE : len(COARSE27)] = np.arange(len(STUFF15))


def remap(mask: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 label map through a (256,) uint8 lookup table (one gather, no per-class loop)."""
    if mask.dtype != np.uint8:
        raise ValueError(f"label map has dtype {mask.dtype}; COCO-Stuff maps are uint8 PNGs")
    return lut[mask]


def stuff_fraction(fine: np.ndarray) -> float:
    """Share of all pixels (unlabeled included in the denominator) whose fine label is a stuff class."""
    return float(np.count_nonzero((fine >= FIRST_STUFF_FINE) & (fine < NUM_FINE))) / fine.size


def iic_selected(fine: np.ndarray, min_side: int = 360, min_stuff_fraction: float = 0.75) -> bool:
    """IIC's curation rule for Coco164kFull_Stuff_Coarse_7: both sides >= 360 px and >= 75% stuff pixels.

    Same test as IIC's curation script (stuff pixel count >= h * w * 0.75 on the full-size map).
    """
    h, w = fine.shape
    return h >= min_side and w >= min_side and stuff_fraction(fine) >= min_stuff_fraction


# ---------------------------------------------------------------------------------------------------------
# COCO-Persons
PERSON_CATEGORY_ID = 1


def person_mask(annotations: Iterable[dict], height: int, width: int) -> np.ndarray:
    """(H, W) uint8: 1 where any person instance (polygon or RLE, crowd included) covers the pixel, else 0.

    `annotations` are COCO instance dicts of one image; only category_id 1 counts.
    """
    from pycocotools import mask as mask_utils  # imported here: only the persons set needs it

    out = np.zeros((height, width), np.uint8)
    for ann in annotations:
        if ann.get("category_id") != PERSON_CATEGORY_ID:
            continue
        seg = ann["segmentation"]
        if isinstance(seg, list):  # polygons
            rles = mask_utils.frPyObjects(seg, height, width)
            rle = mask_utils.merge(rles)
        elif isinstance(seg["counts"], list):  # uncompressed RLE (COCO crowd annotations)
            rle = mask_utils.frPyObjects(seg, height, width)
        else:  # compressed RLE
            rle = seg
        out |= mask_utils.decode(rle).astype(np.uint8)
    return out


def persons_selected(mask: np.ndarray, min_person_fraction: float = 0.3, min_side: int = 360) -> bool:
    """COCO-Persons rule (ours; the thesis does not publish its rule): both sides >= min_side and person
    pixels (crowd included) cover >= min_person_fraction of the image. See README "COCO datasets"."""
    h, w = mask.shape
    return h >= min_side and w >= min_side and float(np.count_nonzero(mask == 1)) / mask.size >= min_person_fraction


def class_pixel_counts(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes + 1,) int64 pixel counts per class; the last entry counts IGNORE (and any id >= K)."""
    counts = np.bincount(mask.ravel(), minlength=256).astype(np.int64)
    return np.concatenate([counts[:num_classes], [counts[num_classes:].sum()]])

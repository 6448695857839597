"""Turn official COCO 2017 files into the benchmark folder datasets (images/, masks/, classes.txt, manifest.json).

  python -m misseg.data.prepare coco-stuff15 --coco-root COCO --out DIR [--lists CURATED] [--limit N] [--cache]
  python -m misseg.data.prepare coco-stuff27 --coco-root COCO --out DIR [--lists CURATED] [--limit N] [--cache]
  python -m misseg.data.prepare coco-persons --coco-root COCO --out DIR [--min-person-fraction F] [--cache]
  python -m misseg.data.prepare stuff15-from-27 --src DIR27 --out DIR      (stuff-15 view of a 27-class folder)
  python -m misseg.data.prepare cache --root DIR                            (uint8 cache of any folder dataset)
  python -m misseg.data.prepare bench --root DIR                            (images/s: decoding vs cache)

COCO layout expected under --coco-root (the official archives unzipped there):
  train2017/*.jpg  val2017/*.jpg  stuffthingmaps_trainval2017/{train2017,val2017}/*.png
  annotations/instances_{train2017,val2017}.json
--lists: IIC's curated lists, CURATED/{train2017,val2017}/Coco164kFull_Stuff_Coarse_7.txt (one id per line).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from misseg.data import coco
from misseg.data.cache import write_cache
from misseg.data.folder import DatasetError, FolderDataset, read_classes
from misseg.runs.errors import OneLineArgumentParser
from misseg.runs.provenance import available_cores

SPLITS = ("train2017", "val2017")
IIC_LIST = "Coco164kFull_Stuff_Coarse_7.txt"  # IIC's curated v7 lists: 49,629 train2017 + 2,175 val2017
FULL_LIST = "Coco164kFull_Stuff_Coarse.txt"  # the curated "full" list STEGO trains COCO-Stuff-27 on
IIC_SCALE = 0.33


# ---------------------------------------------------------------------------------------------------------
# pure image helpers
def scaled_size(h: int, w: int, scale: float | None, shorter: int | None) -> tuple[int, int]:
    """Output (H, W): `scale` rounds like cv2.resize(fx=fy=scale) (IIC); `shorter` sets the shorter side."""
    if scale:
        return max(1, round(h * scale)), max(1, round(w * scale))
    if shorter:
        f = shorter / min(h, w)
        return max(1, round(h * f)), max(1, round(w * f))
    return h, w


def resize_pair(
    image: np.ndarray, mask: np.ndarray, scale: float | None = None, shorter: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """image (H, W, 3) uint8 bilinear, mask (H, W) uint8 nearest-exact (same pixel centres as the image).

    With `scale` the image is resized without antialiasing, like IIC's cv2.INTER_LINEAR pre-scaling;
    with `shorter` it is antialiased, like misseg's ResizeShorter.
    """
    h, w = mask.shape
    size = scaled_size(h, w, scale, shorter)
    if size == (h, w):
        return image, mask
    img = v2.functional.resize(torch.from_numpy(image).permute(2, 0, 1), list(size), antialias=not scale)
    m = v2.functional.resize(
        torch.from_numpy(mask)[None], list(size), interpolation=v2.InterpolationMode.NEAREST_EXACT
    )[0]
    return img.permute(1, 2, 0).contiguous().numpy(), m.numpy()


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 in the stored orientation: COCO annotations ignore EXIF rotation, so we do too."""
    if not path.is_file():
        raise DatasetError(f"{path}: image not found; unzip the COCO image archive under --coco-root.")
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def read_label(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: label map not found; unzip stuffthingmaps_trainval2017.zip under --coco-root.")
    with Image.open(path) as im:
        arr = np.array(im)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise DatasetError(f"{path}: shape {arr.shape} dtype {arr.dtype}; expected a single-channel uint8 PNG.")
    return arr


def save_pair(out: Path, id_: str, image: np.ndarray, mask: np.ndarray) -> None:
    # PNG: lossless, so the images are exactly the pre-scaled pixels (a JPEG re-encode would alter them)
    Image.fromarray(image).save(out / "images" / f"{id_}.png")
    Image.fromarray(mask).save(out / "masks" / f"{id_}.png")


# ---------------------------------------------------------------------------------------------------------
# per-image jobs (top-level functions so that worker processes can run them)
def _stuff_select(job: tuple) -> tuple[str, bool]:
    label_path, min_side, min_fraction = job
    return Path(label_path).stem, coco.iic_selected(read_label(Path(label_path)), min_side, min_fraction)


def _stuff_convert(job: tuple) -> np.ndarray:
    image_path, label_path, out, lut, num_classes, scale, shorter = job
    fine = read_label(Path(label_path))
    image = read_rgb(Path(image_path))
    if image.shape[:2] != fine.shape:
        raise DatasetError(f"{label_path}: label map {fine.shape} != image {image.shape[:2]} of {image_path}.")
    image, mask = resize_pair(image, coco.remap(fine, lut), scale, shorter)
    save_pair(Path(out), Path(image_path).stem, image, mask)
    return coco.class_pixel_counts(mask, num_classes)


def _persons_select(job: tuple) -> tuple[str, bool]:
    id_, anns, h, w, min_fraction, min_side = job
    return id_, coco.persons_selected(coco.person_mask(anns, h, w), min_fraction, min_side)


def _persons_convert(job: tuple) -> np.ndarray:
    image_path, anns, h, w, out, scale, shorter = job
    image = read_rgb(Path(image_path))
    if image.shape[:2] != (h, w):
        raise DatasetError(f"{image_path}: image is {image.shape[:2]}, the instances json says {(h, w)}.")
    image, mask = resize_pair(image, coco.person_mask(anns, h, w), scale, shorter)
    save_pair(Path(out), Path(image_path).stem, image, mask)
    return coco.class_pixel_counts(mask, 2)


def run_jobs(fn: Callable, jobs: Iterable, workers: int) -> Iterable:
    """fn over jobs in order; in `workers` processes when > 0. A generator: stopping early stops submitting."""
    jobs = iter(jobs)
    if workers <= 0:
        yield from map(fn, jobs)
        return
    with ProcessPoolExecutor(workers) as pool:
        pending: list = []
        for job in jobs:
            pending.append(pool.submit(fn, job))
            if len(pending) >= 4 * workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def select(fn: Callable, jobs: list, limit: int | None, workers: int) -> list[str]:
    """Ids whose job returns True, in job order, at most `limit`."""
    chosen: list[str] = []
    for id_, ok in run_jobs(fn, jobs, workers):
        if ok:
            chosen.append(id_)
            if limit is not None and len(chosen) >= limit:
                break
    return chosen


def read_list(lists: Path, split: str, name: str) -> list[str]:
    for path in (lists / split / name, lists / "curated" / split / name):
        if path.is_file():
            return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    raise DatasetError(f"{lists / split / name}: not found; --lists must hold <split>/{name} (IIC's curated lists).")


# ---------------------------------------------------------------------------------------------------------
# output
def start_output(out: Path, classes: Iterable[str]) -> None:
    if (out / "images").is_dir() and any((out / "images").iterdir()):
        raise DatasetError(f"{out / 'images'}: not empty; choose a new --out or delete the old dataset first.")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(exist_ok=True)
    (out / "classes.txt").write_text("\n".join(classes) + "\n")


def write_manifest(out: Path, name: str, classes: list[str], per_split: dict[str, list[str]], counts: np.ndarray,
                   rule: str, parameters: dict, argv: list[str]) -> dict:  # fmt: skip
    """manifest.json: what the folder holds, how it was selected and the exact command that made it."""
    labeled = counts[:-1].sum()
    manifest = {
        "set": name,
        "count": sum(len(v) for v in per_split.values()),
        "count_per_split": {k: len(v) for k, v in per_split.items()},
        "classes": classes,
        "rule": rule,
        "parameters": parameters,
        "class_pixel_frequency": {
            c: round(float(n) / max(labeled, 1), 6) for c, n in zip(classes, counts[:-1], strict=True)
        },
        "ignore_pixel_fraction": round(float(counts[-1]) / max(counts.sum(), 1), 6),
        "pixel_counts": {**{c: int(n) for c, n in zip(classes, counts[:-1], strict=True)}, "ignore": int(counts[-1])},
        "command": "python -m misseg.data.prepare " + " ".join(shlex.quote(a) for a in argv),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def write_splits(out: Path, train: list[str], val: list[str]) -> None:
    (out / "splits").mkdir(exist_ok=True)
    (out / "splits" / "train.txt").write_text("".join(f"{i}\n" for i in train))
    (out / "splits" / "val.txt").write_text("".join(f"{i}\n" for i in val))


# ---------------------------------------------------------------------------------------------------------
# the sets
def prepare_stuff(args: argparse.Namespace, argv: list[str]) -> dict:
    """coco-stuff15 (stuff only, things -> 255) and coco-stuff27 (12 thing + 15 stuff supercategories)."""
    root, out = Path(args.coco_root), Path(args.out)
    stuff15 = args.set == "coco-stuff15"
    classes = list(coco.STUFF15 if stuff15 else coco.COARSE27)
    lut = coco.LUT_FINE_TO_STUFF15 if stuff15 else coco.LUT_FINE_TO_27
    list_names = {"train2017": args.train_list or (IIC_LIST if stuff15 else FULL_LIST), "val2017": IIC_LIST}
    start_output(out, classes)
    per_split: dict[str, list[str]] = {}
    counts = np.zeros(len(classes) + 1, np.int64)
    for split in SPLITS:
        label_dir = root / "stuffthingmaps_trainval2017" / split
        if args.lists:
            ids = read_list(Path(args.lists), split, list_names[split])[: args.limit]
        else:
            if not label_dir.is_dir():
                raise DatasetError(f"{label_dir}: not found; unzip stuffthingmaps_trainval2017.zip under --coco-root.")
            paths = sorted(label_dir.glob("*.png"))
            if not stuff15 and split == "train2017":
                ids = [p.stem for p in paths][: args.limit]  # "full": every train2017 image (see README)
            else:
                jobs = [(str(p), args.min_side, args.min_stuff_fraction) for p in paths]
                ids = select(_stuff_select, jobs, args.limit, args.workers)
        jobs = [(str(root / split / f"{i}.jpg"), str(label_dir / f"{i}.png"), str(out), lut, len(classes),
                 args.scale, args.shorter) for i in ids]  # fmt: skip
        for c in run_jobs(_stuff_convert, jobs, args.workers):
            counts += c
        per_split[split] = ids
        print(f"{split}: {len(ids)} images", flush=True)
    if stuff15:
        rule = ("IIC COCO-Stuff-15: stuff supercategories only (things and unlabeled -> 255); images from IIC's "
                "curated v7 lists" if args.lists else "images with both sides >= min_side px and >= "
                "min_stuff_fraction of all pixels labeled stuff (IIC's curation rule, v7)")  # fmt: skip
        rule += f"; pre-scaled (scale={args.scale}, shorter={args.shorter}); transductive: train = eval = all."
    else:
        write_splits(out, per_split["train2017"], per_split["val2017"])
        rule = (f"COCO-Stuff-27: 12 thing + 15 stuff supercategories (unlabeled -> 255); train = train2017 "
                f"{'list ' + list_names['train2017'] if args.lists else 'all images'}, val = val2017 "
                f"{'list ' + IIC_LIST if args.lists else 'by IIC rule (v7)'}; splits/train.txt, splits/val.txt; "
                f"pre-scaled (scale={args.scale}, shorter={args.shorter}).")  # fmt: skip
    params = {k: getattr(args, k) for k in ("lists", "train_list", "min_side", "min_stuff_fraction", "scale",
                                            "shorter", "limit")}  # fmt: skip
    return write_manifest(out, args.set, classes, per_split, counts, rule, params, argv)


def prepare_persons(args: argparse.Namespace, argv: list[str]) -> dict:
    root, out = Path(args.coco_root), Path(args.out)
    classes = list(coco.PERSONS)
    start_output(out, classes)
    per_split: dict[str, list[str]] = {}
    counts = np.zeros(len(classes) + 1, np.int64)
    for split in SPLITS:
        ann_path = root / "annotations" / f"instances_{split}.json"
        if not ann_path.is_file():
            raise DatasetError(f"{ann_path}: not found; unzip annotations_trainval2017.zip under --coco-root.")
        data = json.loads(ann_path.read_text())
        images = {im["id"]: im for im in data["images"]}
        anns: dict[int, list[dict]] = {}
        for a in data["annotations"]:
            if a["category_id"] == coco.PERSON_CATEGORY_ID:
                anns.setdefault(a["image_id"], []).append(a)
        candidates = sorted((images[i] for i in anns), key=lambda im: im["file_name"])
        jobs = [(Path(im["file_name"]).stem, anns[im["id"]], im["height"], im["width"], args.min_person_fraction,
                 args.min_side) for im in candidates]  # fmt: skip
        ids = set(select(_persons_select, jobs, args.limit, args.workers))
        chosen = [im for im in candidates if Path(im["file_name"]).stem in ids]
        jobs = [(str(root / split / im["file_name"]), anns[im["id"]], im["height"], im["width"], str(out),
                 args.scale, args.shorter) for im in chosen]  # fmt: skip
        for c in run_jobs(_persons_convert, jobs, args.workers):
            counts += c
        per_split[split] = [Path(im["file_name"]).stem for im in chosen]
        print(f"{split}: {len(chosen)} of {len(images)} images ({len(candidates)} with a person)", flush=True)
    rule = ("COCO-Persons (misseg's rule; the thesis does not publish one): images of train2017+val2017 with >= 1 "
            "person annotation, both sides >= min_side px and person pixels (union of all person instance masks, "
            "crowd included) >= min_person_fraction of the image; mask 1 = person, 0 = everything else; "
            f"pre-scaled (scale={args.scale}, shorter={args.shorter}); transductive.")  # fmt: skip
    params = {k: getattr(args, k) for k in ("min_person_fraction", "min_side", "scale", "shorter", "limit")}
    return write_manifest(out, args.set, classes, per_split, counts, rule, params, argv)


def prepare_stuff15_from_27(args: argparse.Namespace, argv: list[str]) -> dict:
    """Stuff-15 view of a 27-class folder dataset (e.g. ../shared/data/coco_stuff27): things -> 255, 12..26 -> 0..14."""
    src, out = Path(args.src).resolve(), Path(args.out).resolve()
    if out == src or src in out.parents:
        raise DatasetError(f"--out {out} is inside --src {src}; the source stays untouched, choose another --out.")
    if read_classes(src) != list(coco.COARSE27):
        raise DatasetError(f"{src / 'classes.txt'}: not the 27 COCO-Stuff classes in benchmark order {coco.COARSE27}.")
    dataset = FolderDataset(src)
    classes = list(coco.STUFF15)
    start_output(out, classes)
    counts = np.zeros(len(classes) + 1, np.int64)
    kept: list[str] = []
    for i, id_ in enumerate(dataset.ids[: args.limit]):
        image, mask27 = dataset.load(i)
        mask27 = mask27.numpy()
        if mask27.shape[0] < args.min_side or mask27.shape[1] < args.min_side:
            continue
        if np.count_nonzero((mask27 >= 12) & (mask27 < 27)) < args.min_stuff_fraction * mask27.size:
            continue
        image, mask = resize_pair(image.permute(1, 2, 0).numpy(), coco.remap(mask27, coco.LUT_27_TO_STUFF15),
                                  args.scale, args.shorter)  # fmt: skip
        save_pair(out, id_, image, mask)
        counts += coco.class_pixel_counts(mask, len(classes))
        kept.append(id_)
    print(f"{len(kept)} of {len(dataset)} images", flush=True)
    rule = (f"stuff-15 view of {src}: coarse 0..11 (things) and 255 -> 255, 12..26 -> 0..14 (IIC order); images "
            "with both sides >= min_side and >= min_stuff_fraction stuff pixels; "
            f"pre-scaled (scale={args.scale}, shorter={args.shorter}).")  # fmt: skip
    params = {k: getattr(args, k) for k in ("src", "min_side", "min_stuff_fraction", "scale", "shorter", "limit")}
    return write_manifest(out, args.set, classes, {"all": kept}, counts, rule, params, argv)


def bench(root: Path, cache_dir: Path | None, repeats: int = 3) -> dict[str, float]:
    """Images/second of FolderDataset.load (decode JPEG/PNG) vs CachedFolderDataset.load (memmap slice)."""
    from misseg.data.cache import CachedFolderDataset

    folder = FolderDataset(root)
    cache_dir = cache_dir or root / "cache"
    if not (cache_dir / "meta.json").is_file():
        write_cache(root, cache_dir)
    cached = CachedFolderDataset(cache_dir)
    result = {}
    for name, ds in (("decode", folder), ("cache", cached)):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(len(ds)):
                ds.load(i)
            best = min(best, time.perf_counter() - t0)
        result[f"{name}_images_per_s"] = len(ds) / best
    result["images"] = len(folder)
    return result


# ---------------------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="python -m misseg.data.prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = p.add_subparsers(dest="set", required=True)

    def common(q: argparse.ArgumentParser, coco_root: bool = True) -> None:
        if coco_root:
            q.add_argument("--coco-root", required=True, help="folder with the unzipped official COCO 2017 archives")
        q.add_argument("--out", required=True, help="new folder dataset to write")
        q.add_argument("--limit", type=int, default=None, help="at most N images per split (quick runs)")
        q.add_argument("--scale", type=float, default=IIC_SCALE, help="pre-scale factor (IIC: 0.33); 0 = off")
        q.add_argument("--shorter", type=int, default=None, help="instead of --scale: resize the shorter side to N")
        q.add_argument(
            "--workers",
            type=int,
            default=min(8, available_cores()),
            help="processes (default: the cores this process may use, at most 8; 0 = in-process)",
        )
        q.add_argument("--cache", action="store_true", help="also write the uint8 cache DIR/cache (data.cache=true)")

    for name in ("coco-stuff15", "coco-stuff27"):
        q = sub.add_parser(name, help=f"{name} from stuffthingmaps_trainval2017")
        common(q)
        q.add_argument("--lists", default=None, help="folder with IIC's curated <split>/<list>.txt (optional)")
        q.add_argument("--train-list", default=None, help=f"train2017 list name (default {IIC_LIST} for stuff15, "
                                                          f"{FULL_LIST} for stuff27)")  # fmt: skip
        q.add_argument("--min-side", type=int, default=360, help="IIC rule (without --lists): min height and width")
        q.add_argument("--min-stuff-fraction", type=float, default=0.75, help="IIC rule: min share of stuff pixels")
    q = sub.add_parser("coco-persons", help="person (1) vs everything else (0) from instances_*.json")
    common(q)
    q.add_argument("--min-person-fraction", type=float, default=0.3, help="min share of person pixels")
    q.add_argument("--min-side", type=int, default=360, help="min height and width of the original image")
    q = sub.add_parser("stuff15-from-27", help="stuff-15 view of a 27-class COCO folder dataset")
    common(q, coco_root=False)
    q.add_argument("--src", required=True, help="27-class folder dataset (read only)")
    q.add_argument("--min-side", type=int, default=0, help="min height and width (IIC: 360)")
    q.add_argument("--min-stuff-fraction", type=float, default=0.0, help="min share of stuff pixels (IIC: 0.75)")
    q = sub.add_parser("cache", help="write the uint8 cache of a folder dataset")
    q.add_argument("--root", required=True)
    q.add_argument("--out", default=None, help="cache folder (default ROOT/cache)")
    q = sub.add_parser("bench", help="images/s: decoding the folder vs reading the cache")
    q.add_argument("--root", required=True)
    q.add_argument("--cache-dir", default=None, help="cache folder (default ROOT/cache; written if missing)")
    q.add_argument("--repeats", type=int, default=3)
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    try:
        if args.set == "cache":
            print(f"cache written to {write_cache(args.root, args.out)}")
            return {}
        if args.set == "bench":
            result = bench(Path(args.root), Path(args.cache_dir) if args.cache_dir else None, args.repeats)
            print(json.dumps({k: round(v, 1) for k, v in result.items()}))
            return result
        if args.shorter:
            args.scale = None
        fn = {"coco-stuff15": prepare_stuff, "coco-stuff27": prepare_stuff, "coco-persons": prepare_persons,
              "stuff15-from-27": prepare_stuff15_from_27}[args.set]  # fmt: skip
        manifest = fn(args, argv)
        if args.cache:
            write_cache(args.out)
        print(f"{args.set}: {manifest['count']} images in {args.out} (manifest.json)")
        return manifest
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

"""Small copies of the shared real sets for the scale study (issue 14 part 3), made once, outside the repos.

OUT/<set> for coco_persons, human_seg, ccp_persons, camvid, coco_stuff27: the shorter side resized to 80 px
(images: PIL bilinear, which antialiases when shrinking, saved as PNG so no second lossy step; masks: nearest),
the same orientation rule as experiments/small_real/shrink.py. OUT/coco_stuff15: `misseg.data.prepare
stuff15-from-27 --scale 0` on the small coco_stuff27 (no second pre-scale: its default 0.33 is for full-size
COCO). OUT/persons400 = coco_persons + human_seg (399 images) and
OUT/persons1400 = those + ccp_persons (1,403): prepared unions, ids prefixed by their source set
(coco_, hseg_, ccp_), made only when the three classes.txt agree. Existing folders are skipped, never rewritten.

Usage: python experiments/scale/make_data.py --shared /work/shared/data --out /work/data_small [--side 80]
       [--sets coco_persons,human_seg,ccp_persons] [--jpeg 90]
--jpeg Q saves the images as JPEG of quality Q instead of PNG (small enough to carry to a GPU machine: the
1,403-image union at 128 px is about 10 MB); --sets makes only those sets (and the unions whose parts are made).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageOps

from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/scale/make_data.py"
SETS = ["coco_persons", "human_seg", "ccp_persons", "camvid", "coco_stuff27"]
UNIONS = {"persons400": ["coco_persons", "human_seg"], "persons1400": ["coco_persons", "human_seg", "ccp_persons"]}
PREFIX = {"coco_persons": "coco_", "human_seg": "hseg_", "ccp_persons": "ccp_"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def shrink(src: Path, dst: Path, side: int, jpeg: int | None = None) -> None:
    tmp = dst.with_name(dst.name + ".partial")  # a stopped run never leaves a half folder under the real name
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "masks").mkdir()
    for extra in ("classes.txt", "SOURCE.md", "metadata.tsv", "fine_to_coarse.tsv"):
        if (src / extra).exists():
            shutil.copy(src / extra, tmp / extra)
    for p in sorted(q for q in (src / "images").iterdir() if q.suffix.lower() in IMAGE_SUFFIXES):
        with Image.open(p) as raw:
            im = ImageOps.exif_transpose(raw).convert("RGB")
            m = Image.open(src / "masks" / f"{p.stem}.png")
            if m.size != im.size:  # the mask was made for the stored orientation (as shrink.py)
                im = raw.convert("RGB")
        if m.size != im.size:
            raise SystemExit(f"{p}: image {im.size} and mask {m.size} differ in size")
        w, h = im.size
        s = side / min(w, h)
        size = (max(side, round(w * s)), max(side, round(h * s)))
        if jpeg:
            im.resize(size, Image.BILINEAR).save(tmp / "images" / f"{p.stem}.jpg", quality=jpeg)
        else:
            im.resize(size, Image.BILINEAR).save(tmp / "images" / f"{p.stem}.png")
        m.resize(size, Image.NEAREST).save(tmp / "masks" / f"{p.stem}.png")
    with open(tmp / "SMALL.md", "w") as f:
        f.write(f"Made by experiments/scale/make_data.py from {src}: shorter side {side} px "
                f"(images bilinear -> {f'JPEG q{jpeg}' if jpeg else 'PNG'}, masks nearest). "
                "See SOURCE.md for the origin and license.\n")  # fmt: skip
    tmp.rename(dst)


def union(out: Path, name: str, parts: list[str]) -> None:
    classes = {p: (out / p / "classes.txt").read_text().split() for p in parts}
    if len({tuple(c) for c in classes.values()}) != 1:
        raise SystemExit(f"{name}: classes.txt differ: {classes}")
    tmp = out / (name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    (tmp / "masks").mkdir()
    shutil.copy(out / parts[0] / "classes.txt", tmp / "classes.txt")
    n = 0
    for part in parts:
        for p in sorted((out / part / "images").iterdir()):
            shutil.copy(p, tmp / "images" / f"{PREFIX[part]}{p.name}")
            shutil.copy(out / part / "masks" / f"{p.stem}.png", tmp / "masks" / f"{PREFIX[part]}{p.stem}.png")
            n += 1
    lines = [f"# {name}: union of {', '.join(parts)} ({n} images)", "",
             "Made by experiments/scale/make_data.py from the small copies beside this folder; ids are prefixed "
             "by their source set: " + ", ".join(f"`{PREFIX[p]}` = {p}" for p in parts) + ".",
             "Origins and licenses: each source's SOURCE.md (research use only).", ""]  # fmt: skip
    for part in parts:
        lines += [f"## {part}", "", (out / part / "SOURCE.md").read_text(), ""]
    (tmp / "SOURCE.md").write_text("\n".join(lines))
    tmp.rename(out / name)
    print(f"{name}: {n} images")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, required=True, help="the shared data folder (SHARED/<set>/images, masks)")
    ap.add_argument("--out", type=Path, required=True, help="where the small copies go (made if missing)")
    ap.add_argument("--side", type=int, default=80, help="the shorter side in px (default 80)")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated subset of " + ",".join(SETS))
    ap.add_argument("--jpeg", type=int, default=None, help="save images as JPEG of this quality (default PNG)")
    args = ap.parse_args(argv)
    sets = args.sets.split(",")
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        ap.error(f"--sets: unknown {unknown}; use some of {SETS}")
    if args.side < 1:
        ap.error(f"--side {args.side}: must be a positive number of pixels")
    if args.jpeg is not None and not 1 <= args.jpeg <= 100:
        ap.error(f"--jpeg {args.jpeg}: a JPEG quality is 1-100")
    to_make = [s for s in sets if not (args.out / s).is_dir()]  # --shared is only read for these
    if to_make and not args.shared.is_dir():
        ap.error(f"--shared {args.shared}: no such directory; pass the shared data folder (e.g. /work/shared/data)")
    for s in to_make:
        if not (args.shared / s / "images").is_dir():
            ap.error(f"--shared {args.shared}: no such directory {args.shared / s / 'images'}; leave {s} out of --sets")
    args.out.mkdir(parents=True, exist_ok=True)
    for s in sets:
        if (args.out / s).is_dir():
            print(f"{s}: exists, skipped")
            continue
        shrink(args.shared / s, args.out / s, args.side, args.jpeg)
        print(f"{s}: {len(list((args.out / s / 'images').iterdir()))} images")
    if "coco_stuff27" in sets and not (args.out / "coco_stuff15").is_dir():
        subprocess.run([sys.executable, "-m", "misseg.data.prepare", "stuff15-from-27",
                        "--src", str(args.out / "coco_stuff27"), "--out", str(args.out / "coco_stuff15"),
                        "--scale", "0"], check=True)  # fmt: skip
    for name, parts in UNIONS.items():
        if not all(p in sets for p in parts):
            continue
        if (args.out / name).is_dir():
            print(f"{name}: exists, skipped")
            continue
        union(args.out, name, parts)


if __name__ == "__main__":
    main()

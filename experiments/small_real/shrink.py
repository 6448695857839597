"""Resize folder datasets so the shorter side is SIDE px (images bilinear JPEG q95, masks nearest PNG).

Usage: python experiments/small_real/shrink.py SRC DST SIDE   (the GPU study: SIDE = 128)
"""

import shutil
from pathlib import Path

from PIL import Image, ImageOps

from misseg.runs.errors import OneLineArgumentParser

PROG = "experiments/small_real/shrink.py"


def shrink(src: Path, dst: Path, side: int) -> None:
    (dst / "images").mkdir(parents=True)
    (dst / "masks").mkdir()
    shutil.copy(src / "classes.txt", dst / "classes.txt")
    for p in sorted((src / "images").iterdir()):
        im = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
        m = Image.open(src / "masks" / f"{p.stem}.png")
        if m.size != im.size:  # mask was made for the stored orientation
            im = Image.open(p).convert("RGB")
        w, h = im.size
        s = side / min(w, h)
        size = (round(w * s), round(h * s))
        im.resize(size, Image.BILINEAR).save(dst / "images" / f"{p.stem}.jpg", quality=95)
        m.resize(size, Image.NEAREST).save(dst / "masks" / f"{p.stem}.png")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    ap.add_argument("src", metavar="SRC", type=Path, help="a folder dataset (SRC/images, SRC/masks, SRC/classes.txt)")
    ap.add_argument("dst", metavar="DST", type=Path, help="the new folder dataset to write")
    ap.add_argument("side", metavar="SIDE", type=int, help="the shorter side in px")
    args = ap.parse_args(argv)
    if not args.src.is_dir():
        ap.error(f"SRC {args.src}: no such directory; pass a folder dataset (SRC/images, SRC/masks, SRC/classes.txt)")
    for need in (args.src / "images", args.src / "masks", args.src / "classes.txt"):
        if not need.exists():
            ap.error(f"SRC {args.src}: no such file or directory {need}; pass a folder dataset")
    for made in (args.dst / "images", args.dst / "masks"):
        if made.exists():
            ap.error(f"DST {args.dst}: {made} exists already; choose a new DST or delete the old one")
    if args.side < 1:
        ap.error(f"SIDE {args.side}: must be a positive number of pixels")
    shrink(args.src, args.dst, args.side)


if __name__ == "__main__":
    main()

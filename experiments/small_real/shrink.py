"""Resize folder datasets so the shorter side is 128 px (images bilinear JPEG q95, masks nearest PNG)."""

import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps

src, dst, side = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
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

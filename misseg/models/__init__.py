"""The networks (encoders, heads, segmenters). The texts and choices the config checks name live here, torch-free,
so runs/validation.py can refuse a bad command line before torch is imported (seconds), as objectives/__init__.py
does for the objective's options."""

ENCODER_BODY_NEEDS = (
    "model/reference=encoder_body reads the encoder's own frozen body: use a timm encoder with "
    "model.encoder.freeze=true (e.g. model/encoder=effnet_lite0_x4), or a reference network of its own "
    "(model/reference=effnet_lite0_x4)"
)
MERGES = ("coassignment", "centres")  # centroids.py: label-free rules merging over-clustered centres

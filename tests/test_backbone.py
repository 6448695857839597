import pytest
import torch
from conftest import run_cli, tiny_module
from omegaconf import OmegaConf

from misseg.lit.build import compose_model
from misseg.models.backbone import BackboneError, TimmBackbone
from misseg.objectives.mi import mi_objective
from misseg.runs.errors import ConfigError
from misseg.runs.validation import check_model_parts


def timm_segmenter(*overrides: str, K: int = 3, d: int = 8):
    return tiny_module("mi", f"K={K}", f"d={d}", "model/encoder=timm", *overrides).model


TINY = ["model.P=8", "model.heads.width=2", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu"]


def test_timm_backbone_gives_local_features_at_stride_d():
    m = timm_segmenter()
    L, H = m(torch.randn(2, 3, 32, 48))
    assert L.shape == (2, 8, 4, 6) and H.shape == (2, 3, 8)
    assert not any(isinstance(x, torch.nn.Conv2d) and x.in_channels == 256 for x in m.modules())  # deeper cut off
    with pytest.raises(ConfigError, match="stride"):
        timm_segmenter(d=64)
    with pytest.raises(ConfigError, match="no model"):
        timm_segmenter("encoder.name=not_a_model")


def test_frozen_backbone_keeps_weights_and_bn_stats_while_the_rest_trains():
    torch.manual_seed(0)
    m = timm_segmenter("encoder.freeze=true", K=2).train()
    body = {k: v.clone() for k, v in m.encoder.body.state_dict().items()}
    proj = m.encoder.project.weight.clone()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        L, H = m(torch.randn(4, 3, 32, 32))
        loss = -mi_objective(L, H, m.tau)["mi"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(v, m.encoder.body.state_dict()[k]) for k, v in body.items())  # incl. running stats
    assert not torch.equal(proj, m.encoder.project.weight)


def test_backbone_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    source = TimmBackbone("resnet18", P=8, d=8)
    # a DINO-like file: wrapped in {"teacher": ...} with "module.backbone." prefixes, plus a head to ignore
    wrapped = {f"module.backbone.{k}": v for k, v in source.body.state_dict().items()}
    wrapped["module.head.weight"] = torch.zeros(3)
    torch.save({"teacher": wrapped}, tmp_path / "dino.pth")
    m = timm_segmenter(K=2)
    m.encoder.load_weights(str(tmp_path / "dino.pth"))
    assert all(torch.equal(v, m.encoder.body.state_dict()[k]) for k, v in source.body.state_dict().items())
    missing = tmp_path / "weights" / "dino_resnet18.pth"
    with pytest.raises(BackboneError, match=f"put the file at {missing}"):
        m.encoder.load_weights(str(missing))
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(BackboneError, match="none of its keys"):
        m.encoder.load_weights(str(tmp_path / "other.pth"))
    with pytest.raises(ConfigError, match="model.encoder.weights"):  # the thesis encoder has no weights key
        tiny_module("mi", "K=2", "encoder.weights=x.pth")


def saved_resnet18(path):
    """A timm ResNet-18 body at random init, saved as a plain weights file (what model.encoder.weights reads)."""
    source = TimmBackbone("resnet18", P=8, d=8)
    torch.save(source.body.state_dict(), path)
    return source


def train_frozen_resnet18(tmp_path, *extra: str):
    """Two training steps of the tiny MI on a frozen ResNet-18 body loaded from tmp_path/r18.pth, into tmp_path/run;
    -> (the body saved, the finished process)."""
    source = saved_resnet18(tmp_path / "r18.pth")
    r = run_cli(
        "-m",
        "misseg.train",
        *TINY,
        "model/encoder=timm",
        "model.d=8",
        f"model.encoder.weights={tmp_path}/r18.pth",
        "model.encoder.freeze=true",
        "trainer.max_steps=2",
        "data.num_images=8",
        "data.batch_size=4",
        "data.image_size=32",
        *extra,
        f"hydra.run.dir={tmp_path}/run",
    )
    return source, r


def test_backbone_trains_two_steps_on_cpu(tmp_path):
    source, r = train_frozen_resnet18(tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2 and ckpt["misseg_model"]["encoder"]["name"] == "resnet18"
    trained = ckpt["state_dict"]["model.encoder.body.conv1.weight"]
    assert torch.equal(trained, source.body.state_dict()["conv1.weight"])  # loaded, then frozen
    # evaluate's references: init=random draws every weight; init=initial loads the weights file again
    from misseg.evaluate import random_init_module

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    random = random_init_module(last, seed=0).model.encoder.body.state_dict()["conv1.weight"]
    initial = random_init_module(last, seed=0, initial=True).model.encoder.body.state_dict()["conv1.weight"]
    assert torch.equal(initial, trained) and not torch.equal(random, trained)
    r = run_cli(
        "-m",
        "misseg.train",
        *TINY,
        "model/encoder=timm",
        "model.d=8",
        f"model.encoder.weights={tmp_path}/absent.pth",
        "trainer.max_steps=1",
        "data.num_images=4",
        "data.batch_size=2",
        "data.image_size=32",
        f"hydra.run.dir={tmp_path}/run2",
    )
    assert r.returncode == 2 and "absent.pth" in r.stderr and "put the file at" in r.stderr
    assert "Traceback" not in r.stderr  # raised in Lightning's setup hook, reported as misseg's one line


def test_body_features_are_the_map_the_projection_reads():
    from misseg.diagnostics.features import has_body, local_features

    module = tiny_module("mi", "K=2", "model/encoder=timm", "d=8")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        body = local_features(module, x, "body")
        assert body.shape == (2, 128, 4, 4)  # ResNet-18's stride-8 map, before the 1x1 conv to P = 8
        assert torch.allclose(module.model.encoder.project(body), local_features(module, x), atol=1e-6)
    assert has_body(module) and not has_body(tiny_module("mi", "K=2"))  # the thesis encoder has no body


def test_evaluate_probe_layer_body_does_not_depend_on_the_projection(tmp_path):
    """With a frozen body, the K-means probe on the body reads the same features whatever the 1x1 projection: the
    trained checkpoint and init=initial (a fresh projection draw, the same weights file) give the same figure,
    while on L they read different maps. The thesis encoder has no body: one line, exit 2."""
    import json

    data = ["data.num_images=8", "data.batch_size=4", "data.image_size=32"]
    _, r = train_frozen_resnet18(tmp_path, "evaluate=false")
    assert r.returncode == 0, r.stderr[-3000:]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ev = [*data, "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "report=false", "probe=kmeans"]
    ev += ["probe_kmeans_restarts=2"]
    probes = {}
    for layer in ("body", "L"):
        for init in ("trained", "initial"):
            out = tmp_path / f"{layer}_{init}"
            a = [f"probe_layer={layer}", f"init={init}", f"hydra.run.dir={out}"]
            r = run_cli("-m", "misseg.evaluate", f"ckpt_path={last}", *ev, *a)
            assert r.returncode == 0, r.stderr[-3000:]
            probes[layer, init] = json.loads((out / "metrics.json").read_text())["probe"]
    assert probes["body", "trained"]["layer"] == "body" and "layer" not in probes["L", "trained"]
    assert probes["body", "trained"]["kmeans"]["confusion"] == probes["body", "initial"]["kmeans"]["confusion"]
    assert probes["L", "trained"]["kmeans"]["confusion"] != probes["L", "initial"]["kmeans"]["confusion"]

    thesis = tmp_path / "thesis"
    r = run_cli("-m", "misseg.train", *TINY, "trainer.max_steps=1", "evaluate=false", *data, f"hydra.run.dir={thesis}")
    assert r.returncode == 0, r.stderr[-3000:]
    args = [f"ckpt_path={thesis}/checkpoints/last.ckpt", *ev, "probe_layer=body", f"hydra.run.dir={tmp_path}/e"]
    r = run_cli("-m", "misseg.evaluate", *args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "probe_layer=body" in r.stderr and "use probe_layer=L" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("-m", "misseg.evaluate", *args[:-2], "probe_layer=bdy", f"hydra.run.dir={tmp_path}/f")
    assert r.returncode == 2 and "probe_layer" in r.stderr and not (tmp_path / "f").exists()
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_kmeans_on_a_pretrained_backbone_reads_the_loaded_body_without_projection(tmp_path):
    """kmeans.features=backbone: the frozen body's own map from the weights file, as the encoder reads it; bad
    keys get one line before anything is made, and a file that cannot be read or an unknown name one line (named by
    this CLI's keys) when the network is built."""
    import json

    from conftest import make_folder_dataset

    from misseg.baselines.kmeans import backbone_features

    source = saved_resnet18(tmp_path / "r18.pth")
    x = torch.randn(2, 3, 32, 32)
    features = backbone_features("resnet18", str(tmp_path / "r18.pth"), stride=8, dilate=False, upsample=1)
    with torch.no_grad():
        assert torch.allclose(features(x), source.eval().body_features(x), atol=1e-5)  # the file's weights, no P

    data = make_folder_dataset(tmp_path / "ds", n=4, size=(32, 32))
    args = ["-m", "misseg.baselines.kmeans", "data=folder", f"data.root={data}", "data.image_size=32"]
    args += ["data.num_workers=0", "kmeans.iters=2", "kmeans.restarts=2", "report=false", "kmeans.features=backbone"]
    b = ["kmeans.backbone.name=resnet18", "kmeans.backbone.stride=8", "kmeans.backbone.dilate=false"]
    b += ["kmeans.backbone.upsample=1"]
    r = run_cli(*args, *b, f"kmeans.backbone.weights={tmp_path}/r18.pth", f"hydra.run.dir={tmp_path}/run")
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["features"] == "backbone" and m["backbone"]["name"] == "resnet18" and 0 <= m["miou"] <= 1
    for extra, message in (
        ([], "kmeans.features=backbone needs kmeans.backbone.weights=PATH"),
        ([f"kmeans.backbone.weights={tmp_path}/absent.pth"], f"kmeans.backbone.weights={tmp_path}/absent.pth: no such"),
        ([f"kmeans.backbone.weights={tmp_path}/r18.pth", "kmeans.backbone.upsample=3"], "a multiple of"),
    ):
        r = run_cli(*args, *b, *extra, f"hydra.run.dir={tmp_path}/bad")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
        assert not (tmp_path / "bad").exists()
    (tmp_path / "junk.pth").write_text("not a state dict")  # found only when loading: one line all the same
    for name, weights, message in (
        ("resnet18", "junk.pth", "cannot be read as a torch.save or .safetensors"),
        ("nope", "r18.pth", "kmeans.backbone.name=nope: timm has no model"),  # named by this CLI's key
    ):
        late = [f"kmeans.backbone.name={name}", f"kmeans.backbone.weights={tmp_path}/{weights}", *b[1:]]
        r = run_cli(*args, *late, f"hydra.run.dir={tmp_path}/late_{name}")
        lines = [line for line in r.stderr.strip().splitlines() if "Seed set to" not in line]
        assert r.returncode == 2 and len(lines) == 1 and message in lines[0], r.stderr
        assert "Traceback" not in r.stderr


def test_the_correspondence_lever_reads_a_pretrained_encoder_when_one_is_loaded(tmp_path):
    """STEGO's setting: with model.encoder.weights, the frozen reference starts from those weights, not random."""
    source = saved_resnet18(tmp_path / "r18.pth")
    m = tiny_module(
        "mi",
        "K=2",
        "model/encoder=timm",
        "d=8",
        f"encoder.weights={tmp_path}/r18.pth",
        "objective.correspondence_weight=1",
    )
    m.setup("fit")
    loaded = source.body.state_dict()
    assert all(torch.equal(v, m.reference.body.state_dict()[k]) for k, v in loaded.items())
    assert all(torch.equal(v, m.model.encoder.state_dict()[k]) for k, v in m.reference.state_dict().items())


def test_dilated_upsampled_backbone_keeps_the_deepest_map_at_the_thesis_stride():
    """model/encoder=effnet_lite0: the deepest EfficientNet-Lite0 map (320 channels), dilated to stride 8 on a 2x
    enlarged input, gives L at stride 4 of the image, like the thesis's encoder; P=None keeps the raw channels."""
    m = tiny_module("mi", "K=2", "model/encoder=effnet_lite0", "d=4").model
    L, _ = m(torch.randn(2, 3, 32, 48))
    assert L.shape == (2, 8, 8, 12) and m.encoder.d == 4
    assert m.encoder.body.feature_info.channels()[m.encoder.level] == 320  # nothing cut off
    x4 = tiny_module("mi", "K=2", "model/encoder=effnet_lite0_x4", "d=4").model  # 4x input, dilated to stride 16
    assert x4(torch.randn(2, 3, 32, 48))[0].shape == L.shape and x4.encoder.body.feature_info.channels()[-1] == 320
    raw = TimmBackbone("tf_efficientnet_lite0", P=None, d=4, stride=8, dilate=True, upsample=2)
    assert raw(torch.randn(1, 3, 32, 32)).shape == (1, 320, 8, 8) and raw.P == 320
    undilated = TimmBackbone("tf_efficientnet_lite0", P=None, d=4, stride=8, upsample=2)
    assert undilated.body.feature_info.channels()[-1] == 40  # without dilate the deeper stages are dropped
    with pytest.raises(BackboneError, match="upsample=0"):
        TimmBackbone("tf_efficientnet_lite0", P=4, upsample=0)
    with pytest.raises(BackboneError, match="multiple of upsample"):
        TimmBackbone("tf_efficientnet_lite0", P=4, stride=8, upsample=3)


def test_a_pretrained_body_sees_its_own_input_normalisation():
    """misseg feeds ImageNet-normalised images; the TF EfficientNets were trained on [-1, 1] (timm's
    pretrained_cfg), ResNets on ImageNet statistics (then the mapping is the identity)."""
    from misseg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from misseg.models import backbone

    assert (backbone.IMAGENET_MEAN, backbone.IMAGENET_STD) == (IMAGENET_MEAN, IMAGENET_STD)
    image = torch.rand(1, 3, 4, 4)
    normalised = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    effnet = TimmBackbone("tf_efficientnet_lite0", P=4, d=16)
    assert torch.allclose(normalised * effnet.scale + effnet.shift, 2 * image - 1, atol=1e-6)
    resnet = TimmBackbone("resnet18", P=4, d=8)
    assert torch.allclose(normalised * resnet.scale + resnet.shift, normalised, atol=1e-6)
    assert "scale" not in resnet.state_dict()  # checkpoints keep their keys
    # weights trained with other statistics than timm's default for the name (DINO's ImageNet ones on a ViT/16,
    # whose timm default is [-1, 1]) say so: model.encoder.input_mean / input_std
    m = tiny_module("mi", "K=2", "model/encoder=timm", "encoder.name=vit_tiny_patch16_224", "d=16")
    assert torch.allclose(m.model.encoder.shift.flatten()[:1], torch.tensor([(0.485 - 0.5) / 0.5]), atol=1e-6)
    dino = tiny_module(
        "mi",
        "K=2",
        "model/encoder=timm",
        "encoder.name=vit_tiny_patch16_224",
        "d=16",
        f"encoder.input_mean=[{','.join(map(str, IMAGENET_MEAN))}]",
        f"encoder.input_std=[{','.join(map(str, IMAGENET_STD))}]",
    ).model.encoder
    assert torch.allclose(normalised * dino.scale + dino.shift, normalised, atol=1e-6)


def reference_seen(m, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, the reference features) that one training step of m on x hands to the objective."""
    seen, objective = {}, m.objective.forward
    m.objective.forward = lambda L, H, valid, second, reference: (
        seen.update(L=L, ref=reference) or objective(L, H, valid, second, reference)
    )
    m.training_step({"image": x}, 0)
    return seen["L"], seen["ref"]


def test_the_correspondence_lever_can_read_a_reference_network_of_its_own(tmp_path):
    """model/reference=effnet_lite0: the lever's frozen network is its own (weights from its own file), the
    encoder C stays the scratch thesis CNN, and the reference's features reach the objective on L's grid."""
    source = TimmBackbone("tf_efficientnet_lite0", P=None, d=4, stride=8, dilate=True, upsample=2)
    torch.save(source.body.state_dict(), tmp_path / "lite0.pth")
    m = tiny_module(
        "mi",
        "K=2",
        "objective.correspondence_weight=1",
        "model/reference=effnet_lite0",
        f"reference.weights={tmp_path}/lite0.pth",
    )
    assert type(m.model.encoder).__name__ == "LocalEncoder" and m.reference.P == 320
    assert not any(p.requires_grad for p in m.reference.parameters())
    m.setup("fit")
    assert all(torch.equal(v, m.reference.body.state_dict()[k]) for k, v in source.body.state_dict().items())
    L, reference = reference_seen(m, torch.randn(2, 3, 16, 16))
    assert reference.shape == (2, 320, *L.shape[-2:])  # the stride-4 reference on the stride-2 L grid


def frozen_lite0_encoder(tmp_path) -> list[str]:
    """Overrides (relative to model) for a frozen effnet_lite0 encoder whose weights are saved to tmp_path/lite0.pth."""
    source = TimmBackbone("tf_efficientnet_lite0", P=None, d=4, stride=8, dilate=True, upsample=2)
    torch.save(source.body.state_dict(), tmp_path / "lite0.pth")
    return ["model/encoder=effnet_lite0", f"encoder.weights={tmp_path}/lite0.pth", "encoder.freeze=true"]


def test_the_encoders_own_body_is_the_reference_a_second_network_would_compute(tmp_path):
    """model/reference=encoder_body: the correspondences are read from the frozen encoder's body features, kept from
    its forward pass, equal to what model/reference=<the same preset> with the same weights computes in a second
    pass; the kept features are the first view's, and a trainable encoder is refused."""
    encoder = frozen_lite0_encoder(tmp_path)
    lever = ["K=2", "objective.correspondence_weight=1", "objective.views=2", *encoder]  # 2 views: the 1st's body
    refs = []
    own = ["model/reference=effnet_lite0", f"reference.weights={tmp_path}/lite0.pth"]
    for reference in (["model/reference=encoder_body"], own):
        torch.manual_seed(0)
        m = tiny_module("mi", *lever, *reference)
        m.setup("fit")
        refs.append(reference_seen(m, torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))[1])
    assert refs[0].shape == (2, 320, 4, 4) and not refs[0].requires_grad
    assert torch.allclose(refs[0], refs[1], atol=1e-5)
    with pytest.raises(ConfigError, match="model/reference=encoder_body reads the encoder's own frozen body"):
        tiny_module("mi", "K=2", "objective.correspondence_weight=1", "model/reference=encoder_body")


def test_the_kept_body_survives_a_compiled_forward(tmp_path, monkeypatch):
    """model.compile=true with model/reference=encoder_body: the kept features are an attribute set inside the
    compiled forward, which dynamo must replay as a side effect; the objective sees the same reference as without
    compile. The backend is aot_eager (dynamo's capture and AOTAutograd, no C++ build), for a CPU test's time."""
    import functools

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    encoder = frozen_lite0_encoder(tmp_path)
    refs = []
    for compile in ("false", "true"):
        torch.manual_seed(0)
        m = tiny_module(
            "mi",
            "K=2",
            "objective.correspondence_weight=1",
            *encoder,
            "model/reference=encoder_body",
            f"compile={compile}",
        )
        m.setup("fit")
        assert (m._compiled is not None) == (compile == "true")
        refs.append(reference_seen(m, torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)))[1])
    assert refs[1].shape == (2, 320, 4, 4)
    assert torch.allclose(refs[0], refs[1], atol=1e-5)


def test_a_reference_error_names_the_reference_keys(tmp_path):
    """The reference's weights are set under model.reference, so its errors name those keys, not the encoder's
    (they named model.encoder.weights, a key the user had not set)."""
    m = tiny_module(
        "mi",
        "K=2",
        "objective.correspondence_weight=1",
        "model/reference=effnet_lite0",
        f"reference.weights={tmp_path}/missing.pth",
    )
    with pytest.raises(ConfigError) as e:
        m.setup("fit")
    assert str(e.value).startswith(f"model.reference.weights='{tmp_path}/missing.pth': file not found")
    assert "model.encoder" not in str(e.value)
    with pytest.raises(BackboneError, match=r"^kmeans\.backbone\.upsample=0: must be"):
        TimmBackbone("resnet18", P=None, upsample=0, key="kmeans.backbone")


def test_a_body_that_cannot_dilate_is_named_in_one_line():
    with pytest.raises(BackboneError, match="resnet18 cannot dilate to stride 4.*dilate=false"):
        TimmBackbone("resnet18", P=4, stride=4, dilate=True)
    with pytest.raises(BackboneError, match="no model"):  # an unknown name stays that error, dilated or not
        TimmBackbone("not_a_model", P=4, stride=8, dilate=True)


def test_iic_loads_the_encoder_weights_file_too(tmp_path):
    """model=iic model.encoder.weights=FILE: the file is loaded as training starts, as for MI (it used to be
    silently ignored: IIC trained from random init)."""
    source = saved_resnet18(tmp_path / "r18.pth")
    m = tiny_module("iic", "K=2", "model/encoder=timm", "d=8", f"encoder.weights={tmp_path}/r18.pth")
    assert not torch.equal(m.model.encoder.body.conv1.weight, source.body.conv1.weight)
    m.setup("fit")
    assert all(torch.equal(v, m.model.encoder.body.state_dict()[k]) for k, v in source.body.state_dict().items())


def test_the_mlp_projection_makes_L_a_nonlinear_function_of_the_frozen_body(tmp_path):
    """A linear projection can only re-weight the body's directions (a least-squares fit of L on the body map is
    exact); STEGO's head cannot be fitted so, and its MLP trains while the body stays frozen. A linear encoder's
    checkpoint keeps its keys (no project_mlp), and an unknown projection is one line, exit 2."""
    from misseg.diagnostics.features import local_features

    torch.manual_seed(0)
    residuals = {}
    for projection in ("linear", "mlp"):
        module = tiny_module("mi", "K=2", "model/encoder=timm", "d=8", f"encoder.projection={projection}")
        x = torch.randn(16, 3, 64, 64)  # 1,024 positions: more rows than the fit's 129 unknowns
        with torch.no_grad():
            body = local_features(module, x, "body").permute(0, 2, 3, 1).reshape(-1, 128)
            L = local_features(module, x).permute(0, 2, 3, 1).reshape(-1, 8)
        A = torch.cat([body, torch.ones(len(body), 1)], 1).double()
        fit = torch.linalg.lstsq(A, L.double()).solution
        residuals[projection] = float((A @ fit - L.double()).norm() / L.norm())
        keys = set(module.model.state_dict())
        assert any(k.startswith("encoder.project_mlp.") for k in keys) == (projection == "mlp")
    assert residuals["linear"] < 1e-4 < 0.05 < residuals["mlp"], residuals

    m = timm_segmenter("encoder.freeze=true", "encoder.projection=mlp", K=2).train()
    body, mlp = m.encoder.body.conv1.weight.clone(), m.encoder.project_mlp[0].weight.clone()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    L, H = m(torch.randn(4, 3, 32, 32))
    (-mi_objective(L, H, m.tau)["mi"]).backward()
    opt.step()
    assert torch.equal(body, m.encoder.body.conv1.weight) and not torch.equal(mlp, m.encoder.project_mlp[0].weight)

    r = run_cli(
        "-m",
        "misseg.train",
        *TINY,
        "model/encoder=timm",
        "model.encoder.projection=conv",
        "trainer.max_steps=1",
        "data.num_images=4",
        "data.batch_size=2",
        "data.image_size=32",
        f"hydra.run.dir={tmp_path}/run",
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "model.encoder.projection='conv'" in r.stderr and "linear, mlp" in r.stderr
    with pytest.raises(BackboneError, match="projection=mlp: this network has no projection"):
        TimmBackbone("resnet18", P=None, projection="mlp")  # a reference network's settings are not dropped


def test_the_last_stages_of_a_frozen_body_train_at_their_own_lr_with_fixed_statistics():
    """trainable_stages=1 on a frozen ResNet-18: layer2 (its last stage up to stride 8) trains at stage_lr_scale x lr,
    layer1 and the stem stay fixed, BatchNorm statistics everywhere stay fixed; the body no longer counts as
    frozen, so it cannot be the correspondences' frozen reference. Out of range or without freeze: one line."""
    torch.manual_seed(0)
    module = tiny_module("mi", "K=2", "model/encoder=timm", "d=8", "encoder.freeze=true", "encoder.trainable_stages=1")
    module.train()
    body = module.model.encoder.body
    before = {k: v.clone() for k, v in body.state_dict().items()}
    opt = module.configure_optimizers()
    assert [g["lr"] for g in opt.param_groups] == [module.hparams.lr, module.hparams.lr * 0.1]
    assert {id(p) for p in opt.param_groups[1]["params"]} == {id(p) for p in body.layer2.parameters()}
    L, H = module.model(torch.randn(4, 3, 32, 32))
    (-mi_objective(L, H, module.model.tau)["mi"]).backward()
    opt.step()
    after = body.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("layer2.") and "running" not in k for k in changed), sorted(changed)
    # (a random-init ResNet zero-inits each block's last BatchNorm scale, so its convs get no gradient yet)
    assert "layer2.0.downsample.0.weight" in changed and not module.model.encoder.frozen
    with pytest.raises(ConfigError, match="encoder_body"):
        tiny_module(
            "mi",
            "K=2",
            "model/encoder=timm",
            "d=8",
            "encoder.freeze=true",
            "encoder.trainable_stages=1",
            "model/reference=encoder_body",
            "objective.correspondence_weight=1",
        )
    for bad in (["encoder.trainable_stages=1"], ["encoder.freeze=true", "encoder.trainable_stages=3"]):
        with pytest.raises(ConfigError, match="trainable_stages=.*needs model.encoder.freeze=true and 1..2"):
            tiny_module("mi", "K=2", "model/encoder=timm", "d=8", *bad)
    with pytest.raises(BackboneError, match="vit_tiny_patch16_224 has no stages this option knows"):
        TimmBackbone("vit_tiny_patch16_224", P=4, d=16, freeze=True, trainable_stages=1)


def test_the_trained_stages_start_at_stage_start_and_the_rest_trains_from_the_first_step(monkeypatch):
    """encoder.stage_start=3: before optimizer step 3 the stages' lr is 0 and Adam leaves them exactly as loaded,
    while the projection and the heads train; from step 3 on they move at stage_lr_scale x lr. A negative start, or
    a start without trained stages: one line."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    module = tiny_module(
        "mi", "K=2", "model/encoder=timm", "d=8", "encoder.freeze=true", "encoder.trainable_stages=1",
        "encoder.stage_start=3",
    )  # fmt: skip
    module.train()
    opt = module.configure_optimizers()
    monkeypatch.setattr(type(module), "trainer", property(lambda self: SimpleNamespace(optimizers=[opt])))
    stage, project = module.model.encoder.body.layer2, module.model.encoder.project
    x = torch.randn(4, 3, 32, 32)
    moved = []
    for step in range(5):
        monkeypatch.setattr(type(module), "global_step", property(lambda self, step=step: step))
        module.on_train_batch_start({}, 0)
        before = [p.clone() for p in stage.parameters()], project.weight.clone()
        opt.zero_grad()
        L, H = module.model(x)
        (-mi_objective(L, H, module.model.tau)["mi"]).backward()
        opt.step()
        stage_moved = any(not torch.equal(a, p) for a, p in zip(before[0], stage.parameters(), strict=True))
        moved.append((stage_moved, not torch.equal(before[1], project.weight), opt.param_groups[-1]["lr"]))
    assert [m[0] for m in moved] == [False, False, False, True, True], moved
    assert all(m[1] for m in moved)  # the projection trains from the first step
    assert [m[2] for m in moved] == [0.0] * 3 + [module.hparams.lr * 0.1] * 2
    for bad, message in (
        (["encoder.trainable_stages=1", "encoder.stage_start=-1"], "stage_start=-1: must be an integer >= 0"),
        ([], "stage_start=5 starts the trained stages: set model.encoder.trainable_stages > 0"),
    ):  # the backbone's own check (direct use) and the config's, before a run directory is written (the CLI)
        overrides = ["model/encoder=timm", "d=8", "encoder.freeze=true", "encoder.stage_start=5", *bad]
        with pytest.raises(ConfigError, match=message):
            tiny_module("mi", "K=2", *overrides)
        with pytest.raises(ConfigError, match=message):
            check_model_parts(OmegaConf.create(compose_model("mi", overrides)))

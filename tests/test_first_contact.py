"""Issue 13, first contact: error hints, the end-of-run summary, one error contract for every CLI, image
formats, nothing lost on resume, and the small things (metrics.json notes, ONNX metadata, legend, sweep table).

Entry points run in-process (as in tests/test_robustness.py) except where an exit status or the files a
process leaves behind are the point."""

import pytest
from conftest import TINY
from test_robustness import error_line, run_main

from misseg import train as train_cli
from misseg.errors import ConfigError
from misseg.validation import check_clusters_match_classes, closest_key, unexpected_key_error

# ------------------------------------------------------------------ 1. error hints


def test_k_error_advice_for_k_above_and_below_the_classes():
    with pytest.raises(ConfigError) as above:
        check_clusters_match_classes(7, 4, "hungarian")
    assert "7 is more" in str(above.value) and "model.matching=majority" in str(above.value)
    with pytest.raises(ConfigError) as below:
        check_clusters_match_classes(2, 4, "hungarian")
    text = str(below.value)
    assert "2 is fewer" in text and "model.K=4" in text and "at least 2 of the 4 classes" in text
    assert "K > classes" not in text  # the old advice only fit K above the classes
    with pytest.raises(ConfigError, match="checkpoint trained with model.K=4.*matching=majority"):
        check_clusters_match_classes(2, 4, "hungarian", key="K (checkpoint)", matching_key="matching")
    check_clusters_match_classes(2, 4, "majority")  # majority accepts any K


def test_closest_key():
    valid = ["model", "model.tau", "model.K", "model.P", "data.num_images", "trainer.max_steps"]
    assert closest_key("model.tua", valid) == "model.tau"
    assert closest_key("model.k", valid) == "model.K"
    assert closest_key("modle.tau", valid) == "model.tau"
    assert closest_key("trainer.max_step", valid) == "trainer.max_steps"
    assert closest_key("model.zzzzzz", valid) is None


@pytest.mark.parametrize(
    "override,suggestion",
    [
        ("model.tua=1", "model.tau"),
        ("data.num_imags=8", "data.num_images"),
        ("trainr.max_steps=1", "trainer.max_steps"),
    ],
)
def test_wrong_key_suggests_the_closest_and_never_plus(override, suggestion, tmp_path, capsys):
    code, err = run_main(train_cli, [override, f"hydra.run.dir={tmp_path}/run"], capsys)
    line = error_line(err)
    assert code == 2 and f"did you mean {suggestion}?" in line and "+" not in line
    assert not (tmp_path / "run").exists()  # refused before Hydra made anything


def test_plus_key_is_refused_in_one_line_not_a_type_error(tmp_path, capsys):
    code, err = run_main(train_cli, ["+model.tua=1", *TINY, f"hydra.run.dir={tmp_path}/run"], capsys)
    line = error_line(err)
    assert code == 2 and line.startswith("error: model.tua:") and "did you mean model.tau?" in line


def test_unexpected_key_error_follows_kwargs_to_the_base_class():
    class Base:
        def __init__(self, batch_size: int = 2, image_size: int = 8) -> None: ...

    class Child(Base):
        def __init__(self, root: str = "", **kwargs) -> None: ...

    err = unexpected_key_error("data", Child, TypeError("__init__() got an unexpected keyword argument 'batch_sise'"))
    assert "data.batch_sise" in str(err) and "did you mean data.batch_size?" in str(err)
    assert unexpected_key_error("data", Child, TypeError("something else")) is None

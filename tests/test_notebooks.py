"""The notebooks run from top to bottom (small settings), and are stored without outputs."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TIER = "e2e"  # tests marked with no tier of their own (conftest.py)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name, overrides):
    """Run a notebook with `overrides` (Python lines) appended to its cell tagged 'parameters'."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1, f"{name}: expected one cell tagged 'parameters'"
    parameters[0].source += "\n" + "\n".join(f"{key} = {value!r}" for key, value in overrides.items())
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def printed(notebook):
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))


def images(notebook):
    return [output for cell in notebook.cells for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda path: path.name)
def test_notebooks_are_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


def test_quickstart_runs_the_whole_pipeline(tmp_path):
    notebook = execute("01_quickstart.ipynb", {"SYNTHETIC_MAPS": 760, "TEACHER_EPOCHS": 1, "STUDENT_EPOCHS": 3,
                                               "WORK_DIR": str(tmp_path)})
    text = printed(notebook)
    assert "int8 in TFLite Micro:" in text and "g_net1_model_data" in text and "kTensorArenaSize" in text
    assert (tmp_path / "net1-int8" / "model.tflite").stat().st_size > 10_000
    assert len(images(notebook)) == 3  # pattern grid, teacher curves, confusion matrix


def test_mixedwm38_notebook_on_synthetic_maps(tmp_path):
    notebook = execute("02_mixedwm38.ipynb", {"DATA": None, "SYNTHETIC_MAPS": 380, "WORK_DIR": str(tmp_path)})
    text = printed(notebook)
    assert re.search(r"paper1-net1: [\d,]+ bytes of flash, [\d,]+ bytes of arena; exact match [\d.]+% "
                     r"on 38 test maps", text)
    assert re.search(r"lightwafer-segclass: [\d,]+ bytes of flash, [\d,]+ bytes of arena; \d of 6 patterns right, "
                     r"mask Dice [\d.]+", text)
    for figure in ("pattern_counts", "patterns", "per_pattern", "confusion", "mistakes", "masks"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 5000, figure


def test_mixedwm38_notebook_on_the_real_dev_set(real_data_path, tmp_path):
    notebook = execute("02_mixedwm38.ipynb", {"DATA": str(real_data_path), "WORK_DIR": str(tmp_path)})
    text = printed(notebook)
    accuracy = float(re.search(r"paper1-net1: .*exact match ([\d.]+)% on 2,789 test maps", text).group(1))
    assert accuracy > 85, text[-2000:]
    dice = float(re.search(r"lightwafer-segclass: .* mask Dice ([\d.]+)", text).group(1))
    assert dice > 0.99, text[-2000:]  # the shipped segmentation student on 6 real test maps

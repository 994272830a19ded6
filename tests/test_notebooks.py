"""The notebooks run top to bottom: the loss curves (a short fit, then the demo watched while it
runs) from an empty folder, the ablation table from ``notebooks/`` as Jupyter starts it (the
shipped table in ``bench/results/``)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["loss_curves.ipynb", "ablation.ipynb"])
def test_notebook_runs(name, tmp_path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    cwd = tmp_path if name == "loss_curves.ipynb" else NOTEBOOKS
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]

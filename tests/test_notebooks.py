"""The notebooks (``notebooks/*.py``, jupytext percent format) run end to end.

Each notebook is converted with jupytext and executed by nbclient in a fresh ``python3``
kernel of this interpreter, against the full small-world lakehouse the ``ml`` fixture
builds (ingest, spatial, series, forecasts, policy, routes and the deep models). A cell
that raises, an ``assert`` inside a notebook included, fails that notebook's case with the
cell's source and traceback.

The kernel starts its own Spark (a second JVM beside the suite's): it gets a copy of the
``small`` profile whose Spark section is the suite's (``local[2]``, two shuffle partitions,
3 GB driver) through ``SHIKONG_CONFIG``, and the lakehouse through ``SHIKONG_LAKEHOUSE``.
Each case records its wall time in the report's ``user_properties`` (``wall_s``; junit XML
and plugins read them); pytest's ``--durations`` shows it too. Speed targets belong in the
benchmarks, not here.
"""

from __future__ import annotations

import os
import re
import time

import jupytext
import pytest
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import REPO_ROOT, TEST_SPARK_CONF

NOTEBOOK_DIR = REPO_ROOT / "notebooks"

#: Every notebook, in reading order; test_every_notebook_is_tested keeps this complete.
NOTEBOOKS = (
    "01_quick_start",
    "02_spatial_analysis",
    "03_forecasting_and_inventory",
    "04_deep_models",
)

#: Seconds one cell may run before its case fails: a hung cell (a Spark job starved of its
#: cores) fails one case instead of holding the suite. Generous, because CI's two cores
#: are shared with the suite's own JVM; the notebooks' budget is 2 minutes each.
CELL_TIMEOUT_S = 300

#: Kernel start-up (a Python with pandas, not yet Spark).
STARTUP_TIMEOUT_S = 120

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_every_notebook_is_tested() -> None:
    found = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.py"))
    assert found == sorted(NOTEBOOKS)


@pytest.fixture(scope="module")
def notebook_env(ml: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The kernel's environment: the ml fixture's lakehouse and a test-sized profile."""
    profile = yaml.safe_load((REPO_ROOT / "conf" / "small.yaml").read_text(encoding="utf-8"))
    profile["spark"] = {
        **profile["spark"],
        "master": "local[2]",
        "app_name": "shikong-notebook-tests",
        "conf": dict(TEST_SPARK_CONF),
    }
    path = tmp_path_factory.mktemp("notebooks") / "notebook-tests.yaml"
    path.write_text(yaml.safe_dump(profile), encoding="utf-8")
    env = {
        # pyspark's gateway variables would make the kernel's pyspark attach to a JVM it
        # did not start instead of starting its own.
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYSPARK_GATEWAY")
    }
    env["SHIKONG_LAKEHOUSE"] = str(ml["cfg"].paths.lakehouse)
    env["SHIKONG_CONFIG"] = str(path)
    lib = str(REPO_ROOT / "lib")
    env["PYTHONPATH"] = os.pathsep.join([lib, *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.mark.parametrize("name", NOTEBOOKS, ids=NOTEBOOKS)
def test_notebook_runs_end_to_end(
    name: str, notebook_env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    nb = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        startup_timeout=STARTUP_TIMEOUT_S,
        # The kernel's working directory: the notebooks folder, as when opened in Jupyter.
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    try:
        client.execute(env=notebook_env)
    except CellExecutionError as err:
        # The message holds the failing cell's source and the kernel's traceback.
        pytest.fail(f"notebook {name}: a cell failed\n{_ANSI.sub('', str(err))}", pytrace=False)
    finally:
        # Not record_property: that warns under junit's default xunit2 family, and the
        # report's user_properties are what it writes anyway.
        request.node.user_properties.append(("wall_s", round(time.perf_counter() - start, 1)))
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert ran and all(c.get("execution_count") for c in ran), f"{name}: a cell did not run"

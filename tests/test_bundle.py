"""The Databricks Asset Bundle (databricks.yml + resources/) against the project.

No workspace is reachable here, so what ``databricks bundle validate`` would resolve is
resolved in the test: ``${var.*}`` per target, ``${workspace.file_path}`` as this checkout
(the bundle's synced files), ``{{job.parameters.*}}`` as the job parameters' defaults. The
job is then checked against the stage registry, pyproject.toml, the config loader, the
jars the project fetches, and the typed job model of the ``databricks-bundles`` package
(it ships no JSON schema; ``Job.from_dict`` rejects unknown fields, bad enum values and
missing required ones). No Spark starts.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from databricks.bundles.jobs import Job

from shikong import session
from shikong.config import load_config
from shikong.jobs.common import job_parser
from shikong.stages import registry

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import databricks_bundle as gen  # noqa: E402

TARGETS = ("dev", "prod")
#: What ${workspace.*} and ${bundle.*} stand for in the test (a deployment resolves them).
USER = "someone@example.com"


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


ROOT_CONFIG = _yaml(REPO / "databricks.yml")
INCLUDED = {
    p.relative_to(REPO).as_posix(): _yaml(p)
    for pattern in ROOT_CONFIG["include"]
    for p in sorted(REPO.glob(pattern))
}
JOB_FILE = INCLUDED[gen.JOB_FILE]
JOB = JOB_FILE["resources"]["jobs"][gen.JOB_KEY]
TASKS = {t["task_key"]: t for t in JOB["tasks"]}
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
_REF = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")
_PARAM = re.compile(r"\{\{job\.parameters\.([A-Za-z0-9_]+)\}\}")


def _variable(name: str, target: str) -> Any:
    target_vars = ROOT_CONFIG["targets"][target].get("variables", {})
    return target_vars.get(name, ROOT_CONFIG["variables"][name]["default"])


def _lookup(ref: str, target: str) -> Any:
    if ref.startswith("var."):
        return resolve(_variable(ref[4:], target), target)
    known = {
        "workspace.file_path": str(REPO),
        "workspace.current_user.userName": USER,
        "workspace.current_user.short_name": USER.split("@")[0],
        "bundle.name": ROOT_CONFIG["bundle"]["name"],
        "bundle.target": target,
    }
    if ref not in known:
        raise AssertionError(f"unresolvable reference ${{{ref}}}")
    return known[ref]


def resolve(value: Any, target: str) -> Any:
    """``value`` with every ``${...}`` replaced as the bundle's ``target`` would."""
    if isinstance(value, dict):
        return {k: resolve(v, target) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, target) for v in value]
    if not isinstance(value, str):
        return value
    whole = _REF.fullmatch(value)
    if whole:  # keeps the type: num_workers: ${var.num_workers} is an int
        return _lookup(whole.group(1), target)
    return _REF.sub(lambda m: str(_lookup(m.group(1), target)), value)


def resolved_job(target: str) -> dict[str, Any]:
    return resolve(JOB, target)  # type: ignore[no-any-return]


def run_parameters(job: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["default"] for p in job["parameters"]}


def task_argv(task: dict[str, Any], params: dict[str, str]) -> list[str]:
    """A task's parameters as the job run passes them (job parameters at their defaults)."""
    return [
        _PARAM.sub(lambda m: params[m.group(1)], a) for a in task["python_wheel_task"]["parameters"]
    ]


STAGE_IDS = [s.name for s in registry.STAGES]


# --- generated == committed ---------------------------------------------------------------


def test_generated_files_are_current() -> None:
    assert gen.stale() == [], "run: python scripts/databricks_bundle.py"


def _copy_sources(root: Path) -> None:
    """What the generator reads besides the registry, into a scratch bundle root."""
    for rel in ("pyproject.toml", "scripts/jars/pom.xml", "scripts/jars/jars.sha256"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, root / rel)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p.write_text(
                p.read_text().replace("entry_point: shikong-", "entry_point: x-")
            ),
            "stale",
        ),
        (lambda p: p.unlink(), "missing"),
        (lambda p: None, None),
    ],
    ids=["edited", "missing", "current"],
)
def test_check_names_a_stale_file_in_one_line(
    tmp_path: Path, change: Any, expected: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    _copy_sources(tmp_path)
    assert gen.main(["--root", str(tmp_path)]) == 0
    capsys.readouterr()
    change(tmp_path / gen.JOB_FILE)
    code = gen.main(["--check", "--root", str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    if expected is None:
        assert (code, out) == (0, [])
    else:
        assert code == 1
        assert len(out) == 1 and gen.JOB_FILE in out[0] and expected in out[0], out


# --- tasks against the registry -------------------------------------------------------------


def test_every_stage_is_one_task_in_registry_order() -> None:
    keys = [t["task_key"] for t in JOB["tasks"]]
    assert keys == [s.name for s in registry.STAGES]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("stage", registry.STAGES, ids=STAGE_IDS)
def test_task_dependencies_are_the_registrys(stage: registry.Stage) -> None:
    deps = [d["task_key"] for d in TASKS[stage.name].get("depends_on", [])]
    assert deps == list(registry.depends_on(stage))


@pytest.mark.parametrize("stage", registry.STAGES, ids=STAGE_IDS)
def test_task_calls_the_stages_console_script(stage: registry.Stage) -> None:
    wheel_task = TASKS[stage.name]["python_wheel_task"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert wheel_task["package_name"] == project["name"]
    target = SCRIPTS[wheel_task["entry_point"]]
    module, func = target.split(":")
    assert callable(getattr(importlib.import_module(module), func))
    assert wheel_task["entry_point"] == stage.console_script


@pytest.mark.parametrize("stage", registry.STAGES, ids=STAGE_IDS)
def test_deep_model_stages_run_on_the_models_cluster(stage: registry.Stage) -> None:
    clusters = {c["job_cluster_key"] for c in JOB["job_clusters"]}
    key = TASKS[stage.name]["job_cluster_key"]
    assert key in clusters
    assert key == (gen.MODELS_CLUSTER if stage.models else gen.MAIN_CLUSTER)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("stage", registry.STAGES, ids=STAGE_IDS)
def test_task_parameters_parse_and_load_the_config(stage: registry.Stage, target: str) -> None:
    job = resolved_job(target)
    params = run_parameters(job)
    task = next(t for t in job["tasks"] if t["task_key"] == stage.name)
    args = job_parser(stage.job).parse_args(task_argv(task, params))
    face = importlib.import_module(f"shikong.jobs.{stage.job}")
    assert isinstance(face.options(args), dict)
    cfg = load_config(args.config, env={}, lakehouse=args.lakehouse)
    assert Path(args.config) == REPO / "conf" / f"{params['profile']}.yaml"
    assert cfg.paths.lakehouse == params["lakehouse"]


# --- libraries, jars and Spark conf ---------------------------------------------------------


@pytest.mark.parametrize("stage", registry.STAGES, ids=STAGE_IDS)
def test_task_libraries_are_the_wheel_and_sedonas_python_side(stage: registry.Stage) -> None:
    libs = TASKS[stage.name]["libraries"]
    wheels = [lib["whl"] for lib in libs if "whl" in lib]
    pypi = [lib["pypi"]["package"] for lib in libs if "pypi" in lib]
    # The glob, relative to the resources file, is where the artifact's build writes.
    build = ROOT_CONFIG["artifacts"]["shikong_wheel"]["build"]
    wheel_dir = build.split("--wheel-dir")[1].split()[0]
    assert [(REPO / gen.JOB_FILE).parent.joinpath(w).resolve() for w in wheels] == [
        REPO / wheel_dir / "*.whl"
    ]
    spark_extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["spark"]
    assert pypi == [r for r in spark_extra if r.startswith("apache-sedona")]
    # Never pyspark or delta-spark: they would replace the runtime's own.
    assert not [p for p in pypi if p.startswith(("pyspark", "delta-spark"))]


SEDONA_JARS = gen.sedona_jars()


@pytest.mark.parametrize("jar", SEDONA_JARS, ids=lambda j: j.artifact)
def test_the_clusters_get_the_jars_the_project_fetches(jar: gen.Jar) -> None:
    cluster_packages = load_config("cluster", env={}).spark.packages
    assert jar.coordinate in cluster_packages  # spark-submit clusters use the same
    assert f".jars/lib/{jar.file}" in ROOT_CONFIG["sync"]["include"]
    script = (REPO / gen.INIT_FILE).read_text()
    assert f"{gen.manifest()[jar.file]} {jar.file}" in script.splitlines()


def test_sedona_is_every_jar_the_bundle_ships() -> None:
    pom = {a for g, a, _ in gen.pom_dependencies() if g in gen.SEDONA_GROUPS}
    assert {j.artifact for j in SEDONA_JARS} == pom
    assert {a.split("-")[0] for a in pom} == {"sedona", "geotools"}
    jar_includes = [p for p in ROOT_CONFIG["sync"]["include"] if p.endswith(".jar")]
    assert sorted(jar_includes) == sorted(f".jars/lib/{j.file}" for j in SEDONA_JARS)


@pytest.mark.parametrize("target", TARGETS)
def test_runtimes_match_the_jars_scala_version(target: str) -> None:
    scala = next(j for j in SEDONA_JARS if j.artifact.startswith("sedona-spark")).artifact
    scala_suffix = scala.rsplit("_", 1)[1]  # 2.13
    for cluster in resolved_job(target)["job_clusters"]:
        assert cluster["new_cluster"]["spark_version"].endswith(f"scala{scala_suffix}")


@pytest.mark.parametrize("cluster", JOB["job_clusters"], ids=lambda c: c["job_cluster_key"])
def test_job_clusters_set_the_sessions_sedona_conf_before_start(cluster: dict[str, Any]) -> None:
    conf = cluster["new_cluster"]["spark_conf"]
    sedona_ext = [e for e in session.SQL_EXTENSIONS if "sedona" in e]
    assert conf["spark.sql.extensions"].split(",") == sedona_ext
    assert conf["spark.serializer"] == session.KRYO_SERIALIZER
    assert conf["spark.kryo.registrator"] == session.SEDONA_KRYO_REGISTRATOR
    # Delta is the runtime's: its catalog and extension stay the runtime's own.
    assert "spark.sql.catalog.spark_catalog" not in conf
    assert all(isinstance(v, str) for v in conf.values())
    init = cluster["new_cluster"]["init_scripts"]
    assert init == [{"workspace": {"destination": f"{gen.FILE_PATH}/{gen.INIT_FILE}"}}]


def _jars_present() -> bool:
    return all((REPO / ".jars" / "lib" / j.file).is_file() for j in SEDONA_JARS)


@pytest.mark.skipif(not _jars_present(), reason="jars not fetched (make setup)")
@pytest.mark.parametrize("tamper", [False, True], ids=["pinned", "tampered"])
def test_init_script_copies_only_the_pinned_jars(tmp_path: Path, tamper: bool) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    for j in SEDONA_JARS:
        (src / j.file).symlink_to(REPO / ".jars" / "lib" / j.file)
    if tamper:
        victim = src / SEDONA_JARS[-1].file
        victim.unlink()
        victim.write_bytes(b"not the jar")
    env = {
        "PATH": "/usr/bin:/bin",
        "SHIKONG_JARS_DIR": str(src),
        "SHIKONG_CLASSPATH_DIR": str(dest),
    }
    proc = subprocess.run(
        ["bash", str(REPO / gen.INIT_FILE)], env=env, capture_output=True, text=True, check=False
    )
    if tamper:
        assert proc.returncode != 0
        assert SEDONA_JARS[-1].file in proc.stderr
        assert not (dest / SEDONA_JARS[-1].file).exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in dest.iterdir()) == sorted(j.file for j in SEDONA_JARS)


# --- targets, schedule, GPU -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "mode", "paused"),
    [("dev", "development", "PAUSED"), ("prod", "production", "UNPAUSED")],
)
def test_targets_and_daily_schedule(target: str, mode: str, paused: str) -> None:
    assert ROOT_CONFIG["targets"][target]["mode"] == mode
    assert [t for t, c in ROOT_CONFIG["targets"].items() if c.get("default")] == ["dev"]
    schedule = resolved_job(target)["schedule"]
    assert schedule["pause_status"] == paused
    assert schedule["timezone_id"] == "UTC"
    sec, minute, hour, dom, month, dow = schedule["quartz_cron_expression"].split()
    # Once a day: fixed time, every day of every month.
    assert all(f.isdigit() for f in (sec, minute, hour))
    assert (dom, month) == ("*", "*") and dow == "?"


@pytest.mark.parametrize("target", TARGETS)
def test_job_parameters_are_profile_and_lakehouse(target: str) -> None:
    params = run_parameters(resolved_job(target))
    assert list(params) == list(gen.PARAMETERS)
    assert (REPO / "conf" / f"{params['profile']}.yaml").is_file()
    lakehouse = params["lakehouse"]
    assert lakehouse.startswith("/Volumes/") or re.match(r"^[a-z0-9]+://", lakehouse), lakehouse


@pytest.mark.parametrize("target", TARGETS)
def test_gpu_training_exactly_where_the_models_cluster_has_gpus(target: str) -> None:
    job = resolved_job(target)
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    cfg = load_config(REPO / "conf" / f"{run_parameters(job)['profile']}.yaml", env={})
    gpu_runtime = "-gpu-ml-" in clusters[gen.MODELS_CLUSTER]["spark_version"]
    assert cfg.models.use_gpu == gpu_runtime
    assert "-gpu-" not in clusters[gen.MAIN_CLUSTER]["spark_version"]
    assert cfg.models.backend == "torch_distributor" and not cfg.models.local_mode
    if gpu_runtime:  # one GPU per worker node: one rank each
        assert clusters[gen.MODELS_CLUSTER]["num_workers"] >= cfg.models.num_processes
    assert target != "prod" or gpu_runtime, "prod trains on GPUs"


def test_gpu_profile_is_the_databricks_profile_with_gpus() -> None:
    cpu, gpu = load_config("databricks", env={}), load_config("databricks-gpu", env={})
    assert gpu.models.use_gpu and not cpu.models.use_gpu
    assert dataclasses.replace(gpu, models=dataclasses.replace(gpu.models, use_gpu=False)) == cpu


# --- validation of the structure ------------------------------------------------------------


@pytest.mark.parametrize("target", [None, *TARGETS], ids=["unresolved", *TARGETS])
def test_job_validates_against_the_typed_bundle_model(target: str | None) -> None:
    job = JOB if target is None else resolved_job(target)
    parsed = Job.from_dict(cast(Any, job))  # raises on an unknown field, bad enum, missing key
    tasks = cast(list[Any], parsed.tasks)
    assert [t.task_key for t in tasks] == [s.name for s in registry.STAGES]


def test_the_typed_model_rejects_what_the_workspace_would() -> None:
    """The validator can fail: a misspelt field and a bad enum value are errors."""
    task = dict(TASKS["ingest"])
    task["pyton_wheel_task"] = task.pop("python_wheel_task")
    with pytest.raises(ValueError, match="pyton_wheel_task"):
        Job.from_dict(cast(Any, {**JOB, "tasks": [task]}))
    schedule = {**JOB["schedule"], "pause_status": "STOPPED"}
    with pytest.raises(ValueError, match="STOPPED"):
        Job.from_dict(cast(Any, {**JOB, "schedule": schedule}))


#: Top-level and per-target keys of a bundle configuration (the CLI's bundle schema).
BUNDLE_KEYS = frozenset(
    [
        "bundle",
        "include",
        "artifacts",
        "sync",
        "variables",
        "targets",
        "workspace",
        "resources",
        "permissions",
        "run_as",
        "presets",
        "experimental",
        "scripts",
        "python",
    ]
)
TARGET_KEYS = frozenset(
    [
        "mode",
        "default",
        "workspace",
        "variables",
        "resources",
        "permissions",
        "run_as",
        "presets",
        "git",
        "artifacts",
        "sync",
        "bundle",
        "cluster_id",
        "compute_id",
    ]
)


def test_bundle_configuration_keys_and_variables() -> None:
    assert set(ROOT_CONFIG) <= BUNDLE_KEYS
    for name, target in ROOT_CONFIG["targets"].items():
        assert set(target) <= TARGET_KEYS, name
    for rel, data in INCLUDED.items():
        assert set(data) <= BUNDLE_KEYS, rel
    text = yaml.safe_dump([ROOT_CONFIG, *INCLUDED.values()])
    used = set(re.findall(r"\$\{var\.([A-Za-z0-9_]+)\}", text))
    declared = set(ROOT_CONFIG["variables"])
    assert used == declared  # every reference declared, every variable used
    for target in ROOT_CONFIG["targets"].values():
        assert set(target.get("variables", {})) <= declared
    artifact = ROOT_CONFIG["artifacts"]["shikong_wheel"]
    assert artifact["type"] == "whl" and (REPO / artifact["path"] / "pyproject.toml").is_file()
    assert any(fnmatch.fnmatch(gen.JOB_FILE, p) for p in ROOT_CONFIG["include"])

"""Launch files: every shipped file validates; each kind of mistake is named before anything runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from protege.launch import cli
from protege.launch.errors import UserError
from protege.launch.launchfile import find_launch_file, load_launch_file, shipped_launch_files

EXPECTED = {"record_keyboard", "record_gamepad", "collect_scripted", "train_mlp", "train_cnn", "train_act",
            "train_diffusion", "evaluate", "dagger_scripted", "dagger_human", "quickstart"}
CHECKOUT_LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


TRAIN = """\
    vars: {data: d.zarr, run: runs/x}
    steps:
      - dataset info: {dataset: "${data}"}
      - train: {dataset: "${data}", out: "${run}", policy: mlp, steps: 100}
    """


def test_every_expected_launch_file_ships() -> None:
    assert EXPECTED <= set(shipped_launch_files())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_launch_file_validates(name: str) -> None:
    plan = load_launch_file(find_launch_file(name))
    assert plan.description and plan.steps
    assert all(step.shell().startswith("protege ") for step in plan.steps)


def test_found_by_path_and_by_bare_name() -> None:
    by_name = find_launch_file("quickstart")
    assert by_name.read_text() == (CHECKOUT_LAUNCH / "quickstart.yaml").read_text()
    assert find_launch_file(str(CHECKOUT_LAUNCH / "quickstart.yaml")) == CHECKOUT_LAUNCH / "quickstart.yaml"
    assert find_launch_file("launch/quickstart.yaml").name == "quickstart.yaml"


def test_unknown_launch_file_lists_the_shipped_ones() -> None:
    with pytest.raises(UserError, match="no launch file 'quikstart'.*quickstart"):
        find_launch_file("quikstart")


def test_variables_resolve_and_keep_their_type(tmp_path: Path) -> None:
    plan = load_launch_file(write(tmp_path, TRAIN))
    assert plan.steps[0].shell() == "protege dataset info d.zarr"
    assert plan.steps[1].argv == ["--dataset", "d.zarr", "--out", "runs/x", "--policy", "mlp", "--steps", "100"]


def test_flags_lists_and_set_mappings_become_argv(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        steps:
          - train: {dataset: d.zarr, out: r, no_progress: true, json: false, set: {lr: 0.001, hidden: [64, 64]}}
          - dataset merge: {inputs: [a.zarr, b.zarr], out: c.zarr}
        """)
    train, merge = load_launch_file(path).steps
    assert train.argv == ["--dataset", "d.zarr", "--out", "r", "--no-progress", "--set", "lr=0.001",
                          "--set", "hidden=64,64"]
    assert merge.argv == ["--out", "c.zarr", "a.zarr", "b.zarr"]


@pytest.mark.parametrize(("step", "message"), [
    ("train: {dataset: d.zarr, out: r, stpes: 5}", "step 1 (train): unknown key 'stpes' (did you mean 'steps'?)"),
    ("train: {dataset: d.zarr, out: r, steps: many}", "step 1 (train): key 'steps' must be an int, got 'many'"),
    ("train: {dataset: d.zarr, out: r, steps: 2.5}", "step 1 (train): key 'steps' must be an int, got 2.5"),
    ("train: {dataset: d.zarr, policy: transformer}", "step 1 (train): key 'policy' must be one of mlp, cnn, act, "
                                                      "diffusion; got 'transformer'"),
    ("train: {dataset: d.zarr, no_progress: 1}", "step 1 (train): key 'no_progress' is a flag: true or false"),
    ("train: {dataset: [a, b]}", "step 1 (train): key 'dataset' must be a string, got list"),
    ("record: {task: lift, out: d.zarr}", "step 1 (record): one of the arguments --device --expert is required"),
    ("record: {expert: scripted, out: d.zarr}", "step 1 (record): missing required key 'task'"),
    ("trian: {dataset: d.zarr}", "step 1: unknown command 'trian'"),
    ("dataset: {dataset: d.zarr}", "step 1: command 'dataset' needs a subcommand"),
    ("dataset inspect: {dataset: d.zarr}", "step 1: unknown 'dataset' command 'inspect'"),
    ("launch: {file: x.yaml}", "step 1: command 'launch' cannot run inside a launch file"),
    ("train: {dataset: '${data}'}", "step 1 (train): key 'dataset': undefined variable '${data}'"),
    ("train: {dataset: 'x/${out-dir}'}", "step 1 (train): key 'dataset': malformed variable reference"),
    ("train: [dataset, d.zarr]", "step 1 (train): arguments must be a mapping"),
])
def test_bad_step_is_named(tmp_path: Path, step: str, message: str) -> None:
    path = write(tmp_path, f"steps:\n  - {step}\n")
    with pytest.raises(UserError) as error:
        load_launch_file(path)
    assert str(error.value).startswith(f"flow.yaml: {message}")


@pytest.mark.parametrize(("text", "message"), [
    ("steps: []\n", "'steps' must be a non-empty list"),
    ("step:\n  - sim list: {}\n", "unknown top-level key 'step'"),
    ("vars: {a: [1, 2]}\nsteps:\n  - sim list: {}\n", "vars: 'a' must be a string, number or true/false"),
    ("vars: {a: '${b}', b: '${a}'}\nsteps:\n  - sim list: {}\n", "vars: circular reference a -> b -> a"),
    ("steps:\n  - train: {dataset: d.zarr\n", "not valid YAML at line"),
    ("steps:\n  - {train: {}, record: {}}\n", "step 1: expected one 'COMMAND: {key: value, ...}' mapping"),
])
def test_bad_file_structure_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UserError) as error:
        load_launch_file(write(tmp_path, text))
    assert str(error.value).startswith(f"flow.yaml: {message}")


def test_overrides_set_variables_and_step_keys(tmp_path: Path) -> None:
    plan = load_launch_file(write(tmp_path, TRAIN), ["data=other.zarr", "train.steps=7", "2.policy=act",
                                                     "train.set={lr: 0.01}", "train.batch-size=8"])
    assert plan.steps[0].argv == ["other.zarr"]
    assert plan.steps[1].argv == ["--dataset", "other.zarr", "--out", "runs/x", "--policy", "act", "--steps", "7",
                                  "--set", "lr=0.01", "--batch-size", "8"]


def test_override_null_removes_and_empty_sets_empty_string(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - record: {task: lift, expert: scripted, out: d.zarr, seed: 3}\n")
    plan = load_launch_file(path, ["record.seed=null", "record.cameras="])
    assert plan.steps[0].argv == ["--task", "lift", "--expert", "scripted", "--out", "d.zarr", "--cameras", ""]


@pytest.mark.parametrize(("override", "message"), [
    ("date=x", "override 'date=x': unknown variable 'date' (vars: data, run)"),
    ("train.stpes=3", "override 'train.stpes=3': step 2 (train) has no key 'stpes' (did you mean 'steps'?)"),
    ("rollout.episodes=3", "override 'rollout.episodes=3': no step runs 'rollout'"),
    ("5.steps=3", "override '5.steps=3': there is no step 5"),
    ("steps", "override 'steps': expected NAME=VALUE or STEP.KEY=VALUE"),
    ("train.steps=many", "step 2 (train): key 'steps' must be an int, got 'many'"),
])
def test_bad_override_is_named(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(UserError) as error:
        load_launch_file(write(tmp_path, TRAIN), [override])
    assert str(error.value).startswith(f"flow.yaml: {message}")


def test_override_of_a_repeated_command_needs_the_step_number(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  - dataset info: {dataset: a.zarr}\n  - dataset info: {dataset: b.zarr}\n")
    with pytest.raises(UserError, match=r"2 steps run 'dataset' \(steps 1, 2\): name one by number"):
        load_launch_file(path, ["dataset.dataset=c.zarr"])
    assert load_launch_file(path, ["2.dataset=c.zarr"]).steps[1].argv == ["c.zarr"]


def test_dry_run_prints_commands_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, TRAIN)
    assert cli.main(["launch", str(path), "--dry-run", f"run={tmp_path / 'run'}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["protege dataset info d.zarr",
                     f"protege train --dataset d.zarr --out {tmp_path / 'run'} --policy mlp --steps 100"]
    assert not (tmp_path / "run").exists()


def test_invalid_file_fails_before_any_step_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"""\
        steps:
          - record: {{task: lift, expert: scripted, episodes: 1, cameras: "", out: "{tmp_path / 'd.zarr'}"}}
          - train: {{dataset: d.zarr, out: r, stpes: 5}}
        """)
    assert cli.main(["launch", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "protege launch: error: flow.yaml: step 2 (train): unknown key 'stpes' (did you mean 'steps'?)"
    assert not (tmp_path / "d.zarr").exists()


def test_first_failing_step_stops_the_launch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from protege.policies.synthetic import make_dataset

    data = make_dataset(tmp_path / "a.zarr", episodes=2, steps=5)
    merged = tmp_path / "merged.zarr"
    path = write(tmp_path, f"""\
        steps:
          - dataset info: {{dataset: "{data}"}}
          - dataset info: {{dataset: "{tmp_path / 'missing.zarr'}"}}
          - dataset merge: {{inputs: ["{data}", "{data}"], out: "{merged}"}}
        """)
    assert cli.main(["launch", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "==> [1/3] protege dataset info" in out and "==> [2/3]" in out and "[3/3]" not in out
    assert err.startswith("protege launch: error: flow.yaml: step 2 (dataset info): ") and err.count("\n") == 1
    assert "missing.zarr" in err
    assert not merged.exists()


def test_list_names_every_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["launch", "--list"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert EXPECTED <= listed

"""Checksums per episode and array, every chunk stored, and damage named: validate, --quick and readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from protege.datasets import Dataset, DatasetError, EpisodeWriter, SequenceSampler
from protege.datasets.schema import checksum
from protege.datasets.validate import validate_dataset
from protege.launch.cli import main


def chunk_files(path: Path, node: str) -> list[Path]:
    """The stored chunks (or shards) of ``node``: a data key, or ``meta/<name>``."""
    folder = path / node if "/" in node else path / "data" / node
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "zarr")))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_every_episode_carries_a_checksum_per_array(small_dataset, expected_episode, zarr_format):
    path = small_dataset((5, 3, 7), zarr_format=zarr_format, chunk_frames=4)
    table = zarr.open_group(str(path), mode="r")["meta/checksums"]
    keys = table.attrs["keys"]
    assert keys == sorted(expected_episode(0, 5)) and table.shape == (3, len(keys))
    for episode, length in enumerate((5, 3, 7)):
        values = expected_episode(episode, length)
        assert [int(c) for c in table[episode]] == [checksum(values[k].astype(Dataset(path).dtype(k))) for k in keys]
    report = validate_dataset(path)
    assert report.valid and not report.notes, report.errors + report.notes


def test_chunks_of_zeros_are_stored(tmp_path, attrs, frame):
    path = tmp_path / "z.zarr"
    with EpisodeWriter(path, attrs, chunk_frames=2) as writer:
        for t in range(4):
            writer.add_frame({**frame(0, t), "intervention": 0})
        writer.save_episode(seed=0, success=True, source=0)
    assert len(chunk_files(path, "intervention")) == 2


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_missing_chunk_is_named_with_its_episodes_and_never_read_as_zeros(small_dataset, capsys, zarr_format):
    path = small_dataset((5, 3, 7), zarr_format=zarr_format, chunk_frames=4)
    victim = chunk_files(path, "joint_pos")[-1]  # the last stored object: frames of episodes 1-2 (or all, sharded)
    victim.unlink()
    name = str(victim.relative_to(path))
    for quick in ([], ["--quick"]):
        assert main(["dataset", "validate", str(path), *quick]) == 1
        out = capsys.readouterr().out
        (error,) = [line for line in out.splitlines() if line.startswith("error:")]
        assert error.startswith(f"error: chunk {name} is missing (episode") and "checksum" not in out, out
    ds = Dataset(path)
    with pytest.raises(DatasetError, match=rf"chunk .*{name} is missing \(episodes? "):
        ds["joint_pos"][:]
    with pytest.raises(DatasetError, match="is missing"):
        ds.load("joint_pos")
    with pytest.raises(DatasetError, match="is missing"):
        ds["joint_pos"][np.array([14])]
    with pytest.raises(DatasetError, match="is missing"):
        SequenceSampler(ds, ["joint_pos"])  # the cache loads every frame
    sampler = SequenceSampler(ds, ["joint_pos"], cache=False)
    with pytest.raises(DatasetError, match="is missing"):
        sampler.sample(np.arange(len(sampler)))


def test_altered_values_are_named_by_validate_only_in_full(small_dataset, capsys):
    path = small_dataset((5, 3, 7), chunk_frames=4)
    array = zarr.open_array(str(path / "data/action"), mode="r+")
    values = array[:]
    values[6] += 1.0  # episode 1, chunk 1
    array[:] = values
    assert main(["dataset", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error: data/action does not match its checksum in episode 1 (altered data in data/action/1.0)" in out
    assert main(["dataset", "validate", str(path), "--quick"]) == 0
    capsys.readouterr()


def test_datasets_without_checksums_still_validate_and_gain_them_when_appended_to(small_dataset, attrs, frame):
    path = small_dataset((5, 3))
    for table in ("checksums", "meta_checksums"):  # as written before checksums were kept
        shutil.rmtree(path / "meta" / table)
    report = validate_dataset(path)
    assert report.valid and report.notes == [
        "2 of 2 episodes carry no checksums (written before protege kept them): their values are only checked to "
        "decode, and a chunk missing there reads as zeros"
    ]
    with EpisodeWriter(path, attrs) as writer:
        for t in range(4):
            writer.add_frame(frame(2, t))
        writer.save_episode(seed=102, success=True, source=0)
    for name in ("checksums", "meta_checksums"):
        table = zarr.open_group(str(path), mode="r")[f"meta/{name}"][:]
        assert (table[:2] == -1).all() and (table[2] != -1).all()
    report = validate_dataset(path)
    assert report.valid and report.notes[0].startswith("2 of 3 episodes carry no checksums"), report.errors


def alter(path: Path, node: str, index: int, value: object) -> None:
    """Change one stored value of ``node`` behind the writer's back (its checksum stays)."""
    array = zarr.open_array(str(path / node), mode="r+")
    values = array[:]
    values[index] = value
    array[:] = values


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_per_episode_values_carry_checksums_and_every_chunk_is_stored(tmp_path, attrs, frame):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, attrs) as writer:
        writer.add_frame(frame(0, 0))
        writer.save_episode(seed=0, success=False, source=0)  # every value but the duration is the fill value
    table = zarr.open_group(str(path), mode="r")["meta/meta_checksums"]
    assert table.attrs["keys"] == ["episode_ends", "episode_duration", "episode_seed", "episode_source",
                                   "episode_success"]
    assert table[0].tolist() == [checksum(np.int64(1)), checksum(np.float64(0.0)), checksum(np.int64(0)),
                                 checksum(np.uint8(0)), checksum(np.bool_(False))]
    for name in ("episode_seed", "episode_success", "episode_source", "meta_checksums", "checksums"):
        assert [p.name for p in chunk_files(path, f"meta/{name}")] == ["0.0" if "checksums" in name else "0"], name


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_missing_chunk_of_per_episode_values_is_named_and_never_read_as_fill_values(
        small_dataset, capsys, zarr_format):
    path = small_dataset((5, 3, 7), zarr_format=zarr_format)
    (victim,) = chunk_files(path, "meta/episode_success")
    victim.unlink()
    name = str(victim.relative_to(path))
    for quick in ([], ["--quick"]):
        assert main(["dataset", "validate", str(path), *quick]) == 1
        assert f"error: chunk {name} is missing (episodes 0-2)\n" in capsys.readouterr().out
    with pytest.raises(DatasetError, match=rf"chunk {name} is missing \(episodes 0-2\)$"):
        Dataset(path).meta("success")
    assert Dataset(path).meta("seed").tolist() == [100, 101, 102]
    assert f"chunk {name} is missing" in one_line_error(capsys, "dataset", "info", str(path))


def test_altered_data_fails_every_reader_of_its_episode_in_one_line(small_dataset, tmp_path, capsys):
    path = small_dataset((5, 3, 7), chunk_frames=4)
    alter(path, "data/action", 6, -1.0)  # episode 1
    alter(path, "data/image_front", 6, 7)
    ds = Dataset(path)
    message = "data/action does not match its checksum in episode 1; `protege dataset validate` names"
    for read in (lambda: ds.episode(1), lambda: ds["action"][5:8], lambda: ds.load("action"),
                 lambda: ds["action"][:], lambda: SequenceSampler(ds, [], "action")):
        with pytest.raises(DatasetError, match=message):
            read()
    assert ds.episode(0).data["action"][0, 0] == 0.0 and ds.episode(2, ["action"]).data["action"].shape == (7, 7)
    video = tmp_path / "episode.mp4"
    err = one_line_error(capsys, "dataset", "export-video", str(path), "--episode", "1", "--out", str(video))
    assert "data/image_front does not match its checksum in episode 1" in err and not video.exists()


def test_altered_per_episode_values_and_episode_ends_are_named(small_dataset, capsys):
    path = small_dataset((5, 3, 7))
    alter(path, "meta/episode_seed", 1, 7)
    assert main(["dataset", "validate", str(path)]) == 1
    assert "error: meta/episode_seed does not match its checksum in episode 1\n" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="meta/episode_seed does not match its checksum in episode 1$"):
        Dataset(path).meta("seed")
    assert "meta/episode_seed does not match" in one_line_error(capsys, "dataset", "info", str(path), "--episodes")
    alter(path, "meta/episode_seed", 1, 101)
    alter(path, "meta/episode_ends", 1, 9)  # still increasing: only its checksum tells
    for quick in ([], ["--quick"]):
        assert main(["dataset", "validate", str(path), *quick]) == 1
        assert "error: meta/episode_ends does not match its checksum in episode 1\n" in capsys.readouterr().out
    with pytest.raises(DatasetError, match="meta/episode_ends does not match its checksum in episode 1$"):
        Dataset(path)


def test_per_episode_values_added_later_get_a_checksum_column(small_dataset, attrs, frame, capsys):
    path = small_dataset((5, 3))
    with EpisodeWriter(path, attrs) as writer:
        writer.add_frame(frame(2, 0))
        writer.save_episode(seed=102, success=True, source=0, parent_episode=1)
    table = zarr.open_group(str(path), mode="r")["meta/meta_checksums"]
    assert table.attrs["keys"][-1] == "episode_parent_episode"
    assert table[:, -1].tolist() == [-1, -1, checksum(np.int64(1))]
    report = validate_dataset(path)
    assert report.valid and not report.notes, report.errors + report.notes
    alter(path, "meta/episode_parent_episode", 2, 0)
    with pytest.raises(DatasetError, match="meta/episode_parent_episode does not match its checksum in episode 2"):
        Dataset(path).meta("parent_episode")
    alter(path, "meta/episode_parent_episode", 2, 1)
    # a writer killed while adding a column named it without growing the table: harmless, and fixed by the next
    zarr.open_array(str(path / "meta/meta_checksums"), mode="r+").attrs["keys"] = [*table.attrs["keys"], "episode_x"]
    assert validate_dataset(path).valid
    with EpisodeWriter(path, attrs) as writer:
        writer.add_frame(frame(3, 0))
        writer.save_episode(seed=103, success=True, source=0, x=2.5)
    assert zarr.open_group(str(path), mode="r")["meta/meta_checksums"].attrs["keys"][-1] == "episode_x"
    report = validate_dataset(path)
    assert report.valid and not report.notes, report.errors + report.notes
    assert Dataset(path).meta("x")[-1] == 2.5


def test_a_missing_chunk_on_an_fsspec_store_is_refused(attrs, frame):
    import uuid

    import fsspec

    url = f"memory://protege-tests/{uuid.uuid4().hex}.zarr"
    with EpisodeWriter(url, attrs, chunk_frames=2) as writer:
        for episode, length in enumerate((3, 4)):
            for t in range(length):
                writer.add_frame(frame(episode, t))
            writer.save_episode(seed=episode, success=True, source=0)
    fs, root = fsspec.core.url_to_fs(url)
    fs.rm(f"{root}/data/joint_pos/1.0")  # frames 2-3: episodes 0-1
    fs.rm(f"{root}/meta/episode_seed/0")
    ds = Dataset(url)
    for read in (lambda: ds["joint_pos"][:], lambda: ds["joint_pos"][np.array([3])], lambda: ds["joint_pos"][2]):
        with pytest.raises(DatasetError, match=r"chunk data/joint_pos/1\.0 is missing \(episodes 0-1\)"):
            read()
    assert ds["joint_pos"][4:].shape == (3, 6)
    with pytest.raises(DatasetError, match=r"chunk meta/episode_seed/0 is missing \(episodes 0-1\)"):
        ds.meta("seed")
    assert not validate_dataset(url).valid

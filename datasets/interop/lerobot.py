"""LeRobotDataset codebase v3.0: export a protege dataset to it, import one from it.

Layout written (as LeRobot's ``lerobot_dataset.py``/``utils.py`` define it)::

    meta/info.json                          codebase_version "v3.0", fps, features, totals, paths, sizes
    meta/stats.json                         per feature: min, max, mean, std, count, q01 q10 q50 q90 q99
    meta/tasks.parquet                      task strings (the index) -> task_index
    meta/episodes/chunk-000/file-000.parquet  one row per episode: lengths, file indices, timestamps, stats/...
    meta/protege.json                       how protege's keys map to columns (read back by import)
    data/chunk-XXX/file-XXX.parquet         one row per frame, episodes concatenated, files rolled at a size
    videos/<key>/chunk-XXX/file-XXX.mp4     one stream per camera, episodes concatenated

``observation.state`` and ``observation.environment_state`` are float32 concatenations of protege
keys, and ``timestamp`` is the nominal ``frame_index / fps`` that indexes the videos, as LeRobot's
policies and loaders expect; every protege low-dim key is also kept exactly (own dtype) in a column
of its own name (``protege.<key>`` where LeRobot owns the name, as for ``action`` and ``timestamp``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from protege.datasets import schema
from protege.datasets.episode import Episode
from protege.datasets.errors import CorruptDatasetError, DatasetNotFoundError, IncompatibleDatasetError
from protege.datasets.interop.common import require, split_state_keys, staged
from protege.datasets.interop.video import FrameReader, VideoFile, pick_encoder, video_info
from protege.datasets.reader import Dataset
from protege.datasets.schema import Source
from protege.datasets.writer import EpisodeWriter

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
PROTEGE_META = "meta/protege.json"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STATE, ENV_STATE, IMAGES = "observation.state", "observation.environment_state", "observation.images."
INDEX_FEATURES = ("frame_index", "episode_index", "index", "task_index")
# Feature names LeRobot gives a meaning of its own; a protege key of that name goes under protege.<key>.
RESERVED = ("action", "timestamp", *INDEX_FEATURES)
CONVERTER = (
    "python -m lerobot.datasets.v30.convert_dataset_v21_to_v30 --repo-id={repo} --root={root} --push-to-hub=false"
)
# Frames match video frames within this (LeRobot's default tolerance_s).
TOLERANCE_S = 1e-4


def _column(key: str) -> str:
    return f"protege.{key}" if key in RESERVED else key


def _feature(dtype: str, shape: Sequence[int], names: list[str] | None, fps: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "names": names, "fps": fps}


def _names(keys: Sequence[str], ds: Dataset) -> list[str]:
    """One name per element of the concatenated keys: ``joint_pos.0`` ..., or the key for a scalar."""
    names = []
    for key in keys:
        size = int(np.prod(ds.shape(key)[1:], dtype=np.int64))
        names += [key] if size == 1 else [f"{key}.{i}" for i in range(size)]
    return names


def _flat(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1)


# -- statistics ------------------------------------------------------------------------------------


def _vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-element statistics of (T, n) values, as LeRobot's compute_stats reports them."""
    x = values.astype(np.float64)
    stats = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0), "count": np.array([len(x)])}
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(x, q, axis=0)
    return stats


def _histogram(images: np.ndarray) -> np.ndarray:
    pixels = images.reshape(-1, 3)
    return np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)])


def _image_stats(counts: np.ndarray, frames: int) -> dict[str, np.ndarray]:
    """Per-channel statistics from a (3, 256) histogram, scaled to [0, 1] and shaped (3, 1, 1)."""
    values = np.arange(256, dtype=np.float64)
    total = counts.sum(1)
    mean = counts @ values / total
    cdf = np.cumsum(counts, axis=1) / total[:, None]
    stats = {
        "min": np.argmax(counts > 0, axis=1),
        "max": 255 - np.argmax(counts[:, ::-1] > 0, axis=1),
        "mean": mean,
        "std": np.sqrt(np.maximum(counts @ values**2 / total - mean**2, 0.0)),
        **{name: np.argmax(cdf >= q, axis=1) for name, q in QUANTILES.items()},
    }
    return {**{k: (v / 255.0).reshape(3, 1, 1) for k, v in stats.items()}, "count": np.array([frames])}


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
    return {key: {name: value.tolist() for name, value in s.items()} for key, s in stats.items()}


# -- export ----------------------------------------------------------------------------------------


class _RollingParquet:
    """Frames appended as tables to data/chunk-XXX/file-XXX.parquet, a new file once the size limit is near."""

    def __init__(self, root: Path, limit_mb: float, chunks_size: int) -> None:
        self._pq = require("pyarrow.parquet")
        self._root, self._limit, self._chunks = root, limit_mb * 2**20, chunks_size
        self._writer: Any = None
        self._path: Path | None = None
        self._frames = 0
        self.index = 0  # files opened so far, minus one

    def append(self, table: Any) -> tuple[int, int]:
        """Write one episode's rows; returns the (chunk, file) it went to."""
        if self._writer is not None:
            size = self._path.stat().st_size if self._path and self._path.exists() else 0
            if size + size / max(self._frames, 1) * table.num_rows >= self._limit:
                self.close()
                self.index += 1
        if self._writer is None:
            self._path = self._root / DATA_PATH.format(**self.position())
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._pq.ParquetWriter(self._path, table.schema, compression="snappy")
            self._frames = 0
        self._writer.write_table(table)
        self._frames += table.num_rows
        return self.position()["chunk_index"], self.position()["file_index"]

    def position(self) -> dict[str, int]:
        return {"chunk_index": self.index // self._chunks, "file_index": self.index % self._chunks}

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _RollingVideo:
    """One camera's episodes concatenated into videos/<key>/chunk-XXX/file-XXX.mp4, rolled at a size."""

    def __init__(self, root: Path, key: str, fps: int, shape: tuple[int, ...], encoder: str, limit_mb: float,
                 chunks_size: int) -> None:
        self._root, self._key, self._fps, self._shape = root, key, fps, shape
        self._encoder, self._limit, self._chunks = encoder, limit_mb * 2**20, chunks_size
        self._file: VideoFile | None = None
        self.index = 0

    def append(self, images: np.ndarray) -> dict[str, Any]:
        """Encode one episode; returns its chunk/file indices and from/to timestamps in that file."""
        if self._file is not None and self._file.frames:
            size = self._file.size_bytes()
            if size + size / self._file.frames * len(images) >= self._limit:
                self._file.close()
                self._file = None
                self.index += 1
        if self._file is None:
            chunk, file = divmod(self.index, self._chunks)
            path = self._root / VIDEO_PATH.format(video_key=self._key, chunk_index=chunk, file_index=file)
            self._file = VideoFile(path, self._fps, self._shape[1], self._shape[0], self._encoder)
        start = self._file.frames
        self._file.write(images)
        prefix = f"videos/{self._key}/"
        chunk, file = divmod(self.index, self._chunks)
        return {
            prefix + "chunk_index": chunk,
            prefix + "file_index": file,
            prefix + "from_timestamp": start / self._fps,
            prefix + "to_timestamp": self._file.frames / self._fps,
        }

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _integer_fps(ds: Dataset) -> int:
    fps = ds.fps
    if fps != round(fps):
        raise IncompatibleDatasetError(
            f"{ds.path} runs at {fps:g} fps; LeRobot datasets need a whole number of frames per second"
        )
    return int(round(fps))


def _tasks_table(pa: Any, tasks: list[str]) -> Any:
    """meta/tasks.parquet as pandas writes a DataFrame indexed by task string (what LeRobot reads back)."""
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
             "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)), "__index_level_0__": tasks})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _arrow_column(pa: Any, values: np.ndarray) -> Any:
    """A scalar column for (T,) and (T, 1) values (LeRobot's shape (1,)), a fixed-size list column for (T, n)."""
    if values.ndim == 1 or values.shape[1] == 1:
        return pa.array(values.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def export(
    ds: Dataset,
    out: Path,
    repo_id: str | None = None,
    task_text: str | None = None,
    state_keys: Sequence[str] | None = None,
    env_state_keys: Sequence[str] | None = None,
    data_file_mb: float = DATA_FILE_MB,
    video_file_mb: float = VIDEO_FILE_MB,
    chunks_size: int = CHUNKS_SIZE,
    encoder: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write ``ds`` as a LeRobotDataset v3.0 folder ``out`` (which must not exist)."""
    pa = require("pyarrow")
    fps = _integer_fps(ds)
    state, env = split_state_keys(ds, state_keys, env_state_keys)
    images = [key for key in ds.keys if schema.is_image_key(key)]
    low_dim = [key for key in ds.keys if key not in images]
    encoder = pick_encoder(encoder) if images else None
    task = task_text or str(ds.attrs["task"])

    features: dict[str, dict[str, Any]] = {}
    for name, keys in ((STATE, state), (ENV_STATE, env)):
        if keys:
            features[name] = _feature("float32", [len(_names(keys, ds))], _names(keys, ds), fps)
    features["action"] = _feature("float32", [len(_names(["action"], ds))], _names(["action"], ds), fps)
    for key in images:
        shape = ds.shape(key)[1:]
        features[IMAGES + key[len(schema.IMAGE_PREFIX) :]] = {
            "dtype": "video", "shape": list(shape), "names": ["height", "width", "channels"],
            "info": video_info(encoder or "", fps, shape[0], shape[1]),
        }
    features["timestamp"] = _feature("float32", [1], None, fps)
    for name in INDEX_FEATURES:
        features[name] = _feature("int64", [1], None, fps)
    for key in low_dim:
        size = int(np.prod(ds.shape(key)[1:], dtype=np.int64))
        features[_column(key)] = _feature(str(ds.dtype(key)), [size], None, fps)

    with staged(out) as root:
        data_files = _RollingParquet(root, data_file_mb, chunks_size)
        videos = {
            key: _RollingVideo(root, IMAGES + key[len(schema.IMAGE_PREFIX) :], fps, ds.shape(key)[1:], encoder or "",
                               video_file_mb, chunks_size)
            for key in images
        }
        per_feature: dict[str, list[np.ndarray]] = {}
        histograms = {key: np.zeros((3, 256), np.int64) for key in images}
        episodes: list[dict[str, Any]] = []
        meta = {name: ds.meta(name) for name in ds.meta_names}
        try:
            for e in tqdm(range(ds.num_episodes), unit="ep", desc="export lerobot", disable=not progress):
                frames = ds.episode_slice(e)
                length = frames.stop - frames.start
                data = ds.episode(e, keys=low_dim).data
                columns: dict[str, np.ndarray] = {}
                for name, keys in ((STATE, state), (ENV_STATE, env)):
                    if keys:
                        columns[name] = np.concatenate([_flat(data[k]) for k in keys], axis=1).astype(np.float32)
                columns["action"] = _flat(data["action"]).astype(np.float32)
                frame_index = np.arange(length, dtype=np.int64)
                columns["timestamp"] = (frame_index / fps).astype(np.float32)
                columns["frame_index"] = frame_index
                columns["episode_index"] = np.full(length, e, np.int64)
                columns["index"] = np.arange(frames.start, frames.stop, dtype=np.int64)
                columns["task_index"] = np.zeros(length, np.int64)
                for key in low_dim:
                    values = data[key]
                    columns[_column(key)] = values if values.ndim == 1 else _flat(values)
                chunk, file = data_files.append(pa.table({n: _arrow_column(pa, v) for n, v in columns.items()}))
                row: dict[str, Any] = {
                    "episode_index": e, "tasks": [task], "length": length,
                    "data/chunk_index": chunk, "data/file_index": file,
                    "dataset_from_index": frames.start, "dataset_to_index": frames.stop,
                }
                stats = {}
                for name, values in columns.items():
                    per_feature.setdefault(name, []).append(values)
                    stats[name] = _vector_stats(values.reshape(length, -1))
                for key in images:
                    pixels = ds[key][frames]
                    row.update(videos[key].append(pixels))
                    counts = _histogram(pixels)
                    histograms[key] += counts
                    stats[IMAGES + key[len(schema.IMAGE_PREFIX) :]] = _image_stats(counts, length)
                for feature, s in stats.items():
                    row.update({f"stats/{feature}/{name}": value.tolist() for name, value in s.items()})
                row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
                row.update({f"protege/{name}": values[e].item() for name, values in meta.items()})
                episodes.append(row)
        finally:
            data_files.close()
            for video in videos.values():
                video.close()

        pq = require("pyarrow.parquet")
        episodes_path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(episodes), episodes_path)
        pq.write_table(_tasks_table(pa, [task]), root / "meta/tasks.parquet")
        totals = {
            key: _vector_stats(np.concatenate(parts).reshape(ds.num_frames, -1)) for key, parts in per_feature.items()
        }
        for key, counts in histograms.items():
            totals[IMAGES + key[len(schema.IMAGE_PREFIX) :]] = _image_stats(counts, ds.num_frames)
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": str(ds.attrs["robot"]),
            "total_episodes": ds.num_episodes,
            "total_frames": ds.num_frames,
            "total_tasks": 1,
            "chunks_size": chunks_size,
            "data_files_size_in_mb": data_file_mb,
            "video_files_size_in_mb": video_file_mb,
            "fps": fps,
            "splits": {"train": f"0:{ds.num_episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if images else None,
            "features": features,
        }
        protege = {
            "attrs": schema.user_attrs(ds.attrs),
            "keys": {key: {"column": _column(key), "dtype": str(ds.dtype(key)), "shape": list(ds.shape(key)[1:])}
                     for key in low_dim},
            "images": {key: IMAGES + key[len(schema.IMAGE_PREFIX) :] for key in images},
            "state": state,
            "environment_state": env,
        }
        _write_json(root / "meta/info.json", info)
        _write_json(root / "meta/stats.json", _jsonable(totals))
        _write_json(root / PROTEGE_META, protege)
    return {
        "output": str(out),
        "format": f"lerobot {CODEBASE_VERSION}",
        "repo_id": repo_id or out.name,
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "state_keys": state,
        "environment_state_keys": env,
        "video_codec": encoder,
        "data_files": data_files.index + 1,
        "video_files": {key: video.index + 1 for key, video in videos.items()},
    }


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4))


# -- import ----------------------------------------------------------------------------------------


def read_info(src: Path) -> dict[str, Any]:
    """meta/info.json of a LeRobot v3.0 folder; DatasetNotFoundError, CorruptDatasetError or
    IncompatibleDatasetError saying why ``src`` is not one."""
    path = src / "meta" / "info.json"
    if not src.is_dir() or not path.is_file():
        raise DatasetNotFoundError(f"{src} is not a LeRobot dataset (no meta/info.json)")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptDatasetError(f"{path} is unreadable: {exc}") from None
    version = info.get("codebase_version") if isinstance(info, dict) else None
    if version != CODEBASE_VERSION:
        hint = ""
        if isinstance(version, str) and version.startswith("v2"):
            hint = "; convert it with LeRobot's own converter: " + CONVERTER.format(repo=src.name, root=src)
        raise IncompatibleDatasetError(
            f"{src} is a LeRobot dataset of codebase version {version!r}, protege reads {CODEBASE_VERSION}{hint}"
        )
    for name in ("fps", "features", "total_episodes"):
        if name not in info:
            raise CorruptDatasetError(f"{path} lacks {name!r}")
    return info


def _read_parquets(src: Path, folder: str) -> list[Path]:
    paths = sorted((src / folder).glob("chunk-*/file-*.parquet"))
    if not paths:
        raise CorruptDatasetError(f"{src} has no {folder}/chunk-*/file-*.parquet")
    return paths


def _read_table(path: Path) -> Any:
    """A parquet file as a pyarrow table; CorruptDatasetError if it is missing, truncated or not parquet."""
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    if not path.is_file():
        raise CorruptDatasetError(f"{path} is missing")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptDatasetError(f"{path} is damaged ({str(exc).splitlines()[0]})") from None


def _columns(table: Any, path: Path, names: Sequence[str]) -> None:
    """CorruptDatasetError naming the first of ``names`` that ``table`` (read from ``path``) lacks."""
    missing = [name for name in names if name not in table.column_names]
    if missing:
        raise CorruptDatasetError(f"{path} has no column {missing[0]!r}")


def _read_protege(src: Path) -> dict[str, Any] | None:
    """meta/protege.json (None if absent: a dataset LeRobot wrote); CorruptDatasetError if it is damaged."""
    path = src / PROTEGE_META
    if not path.is_file():
        return None
    try:
        protege = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptDatasetError(f"{path} is unreadable: {exc}") from None
    fields = {"attrs": dict, "keys": dict, "images": dict}
    if not isinstance(protege, dict) or any(not isinstance(protege.get(k), t) for k, t in fields.items()):
        raise CorruptDatasetError(f"{path} is damaged: it needs the objects {', '.join(fields)}")
    for key, spec in protege["keys"].items():
        if not isinstance(spec, dict) or not {"column", "dtype", "shape"} <= set(spec):
            raise CorruptDatasetError(f"{path} is damaged: key {key!r} needs its column, dtype and shape")
    return protege


def _numpy(column: Any, length: int) -> np.ndarray:
    """A parquet column as numpy: scalars (T,), fixed or variable lists (T, n)."""
    pa = require("pyarrow")
    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if pa.types.is_fixed_size_list(array.type) or pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        flat = array.flatten()
        if pa.types.is_list(flat.type) or pa.types.is_fixed_size_list(flat.type):
            return np.asarray(array.to_pylist())
        return flat.to_numpy(zero_copy_only=False).reshape(length, -1)
    return array.to_numpy(zero_copy_only=False)


def _key_name(feature: str) -> str:
    """A protege key for a foreign feature: ``observation.state`` -> ``state``, dots and odd characters -> _."""
    name = feature.removeprefix("observation.")
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name).strip("_") or "value"


class _Episodes:
    """meta/episodes rows (stats columns left out), in episode order."""

    def __init__(self, src: Path) -> None:
        rows: list[dict[str, Any]] = []
        for path in _read_parquets(src, "meta/episodes"):
            table = _read_table(path)
            _columns(table, path, ("episode_index", "length", "data/chunk_index", "data/file_index"))
            keep = [name for name in table.column_names if not name.startswith("stats/")]
            rows += table.select(keep).to_pylist()
        self.rows = sorted(rows, key=lambda row: row["episode_index"])


def _tasks(src: Path) -> list[str]:
    path = src / "meta" / "tasks.parquet"
    if not path.is_file():
        return []
    table = _read_table(path)
    text = next((n for n in table.column_names if n != "task_index"), None)
    if text is None:
        return []
    _columns(table, path, ("task_index",))
    pairs = sorted(zip(table.column("task_index").to_pylist(), table.column(text).to_pylist(), strict=True))
    return [str(task) for _, task in pairs]


def import_(src: Path, out: Path, progress: bool = True) -> dict[str, Any]:
    """Build the protege dataset ``out`` from the LeRobot v3.0 folder ``src`` (videos decoded with PyAV)."""
    info = read_info(src)
    require("av")
    protege = _read_protege(src)
    features: dict[str, dict[str, Any]] = info["features"]
    fps = float(info["fps"])
    episodes = _Episodes(src).rows
    if len(episodes) != info["total_episodes"]:
        raise CorruptDatasetError(
            f"{src}: meta/episodes holds {len(episodes)} episodes, info.json says {info['total_episodes']}"
        )
    tasks = _tasks(src)
    cameras = {name: ft for name, ft in features.items() if ft.get("dtype") in ("video", "image")}
    if protege is not None:
        columns = {key: spec["column"] for key, spec in protege["keys"].items()}
        images = {key: feature for key, feature in protege["images"].items()}
        attrs = protege["attrs"]
    else:
        skip = {"timestamp", *INDEX_FEATURES, *cameras}
        columns = {
            _key_name(name): name for name, ft in features.items() if name not in skip and ft.get("dtype") != "string"
        }
        columns["timestamp"] = "timestamp"
        images = {schema.IMAGE_PREFIX + _key_name(name.removeprefix(IMAGES)): name for name in cameras}
        attrs = {
            "fps": fps, "robot": info.get("robot_type") or "unknown", "task": tasks[0] if tasks else src.name,
            "action_space": "unknown", "tasks": tasks, "imported_from": f"lerobot {CODEBASE_VERSION}",
        }
    attrs = {**attrs, "cameras": [key[len(schema.IMAGE_PREFIX) :] for key in images]}
    for key in [*columns, *images]:
        schema.check_name(key, "data key")

    readers: dict[str, tuple[Path, FrameReader]] = {}
    tables: dict[Path, Any] = {}
    data_path = info.get("data_path", DATA_PATH)
    with staged(out) as staging, EpisodeWriter(staging, attrs) as writer:
        try:
            for row in tqdm(episodes, unit="ep", desc="import lerobot", disable=not progress):
                path = src / data_path.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])
                if path not in tables:
                    tables = {path: _read_table(path)}  # episodes come file by file: keep one
                    _columns(tables[path], path, ("episode_index", "timestamp"))
                table = tables[path]
                mask = np.asarray(table.column("episode_index").to_numpy(zero_copy_only=False) == row["episode_index"])
                rows = table.filter(mask)
                length = rows.num_rows
                if length != row["length"]:
                    raise CorruptDatasetError(
                        f"{path}: episode {row['episode_index']} has {length} rows, meta says {row['length']}"
                    )
                episode: dict[str, np.ndarray] = {}
                for key, name in columns.items():
                    if name not in rows.column_names:
                        raise CorruptDatasetError(f"{path} has no column {name!r}")
                    values = _numpy(rows.column(name), length)
                    if protege is not None:
                        spec = protege["keys"][key]
                        values = values.astype(spec["dtype"]).reshape(length, *spec["shape"])
                    episode[key] = values
                if protege is None:
                    episode["timestamp"] = episode["timestamp"].astype(np.float64)
                timestamps = rows.column("timestamp").to_numpy(zero_copy_only=False).astype(np.float64)
                for key, feature in images.items():
                    episode[key] = _episode_images(
                        src, info, features[feature], feature, row, rows, timestamps, readers
                    )
                extra = {name[len("protege/") :]: value for name, value in row.items() if name.startswith("protege/")}
                builtin = {name: extra.pop(name) for name in ("seed", "success", "source", "duration") if name in extra}
                if protege is None and len(tasks) > 1:
                    extra["task_index"] = int(rows.column("task_index")[0].as_py())
                writer.add_episode(Episode(
                    episode,
                    seed=int(builtin.get("seed", row["episode_index"])),
                    success=bool(builtin.get("success", True)),
                    source=int(builtin.get("source", Source.HUMAN)),
                    meta=extra,
                ))
        finally:
            for _, reader in readers.values():
                reader.close()
        frames = sum(row["length"] for row in episodes)
    return {"output": str(out), "format": f"lerobot {CODEBASE_VERSION}", "episodes": len(episodes), "frames": frames,
            "keys": sorted([*columns, *images]), "sim_state": "sim_state" in columns}


def _episode_images(
    src: Path, info: dict[str, Any], feature: dict[str, Any], name: str, row: dict[str, Any], rows: Any,
    timestamps: np.ndarray, readers: dict[str, tuple[Path, FrameReader]],
) -> np.ndarray:
    """One camera's frames of one episode: decoded from its video by timestamp, or from PNG bytes."""
    if feature["dtype"] == "image":
        import cv2

        cells = rows.column(name).to_pylist()
        decoded = [cv2.imdecode(np.frombuffer(cell["bytes"], np.uint8), cv2.IMREAD_COLOR) for cell in cells]
        if any(image is None for image in decoded):
            raise CorruptDatasetError(f"{src}: episode {row['episode_index']} has an undecodable {name} image")
        return np.stack([image[..., ::-1] for image in decoded])
    prefix = f"videos/{name}/"
    fields = ("chunk_index", "file_index", "from_timestamp")
    if "video_path" not in info or any(prefix + field not in row for field in fields):
        raise CorruptDatasetError(f"{src}: the metadata does not say where episode {row['episode_index']}'s "
                                  f"{name} video is")
    path = src / info["video_path"].format(
        video_key=name, chunk_index=row[prefix + "chunk_index"], file_index=row[prefix + "file_index"]
    )
    current = readers.get(name)
    start = float(row[prefix + "from_timestamp"])
    if current is None or current[0] != path or start + timestamps[0] < current[1].last_time:
        if current is not None:
            current[1].close()
        readers[name] = current = (path, FrameReader(path, TOLERANCE_S))
    av = require("av")
    try:
        return np.stack([current[1].frame_at(start + t) for t in timestamps])
    except av.error.FFmpegError as exc:
        raise CorruptDatasetError(f"{path} is damaged ({exc})") from None

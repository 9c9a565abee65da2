"""protege.datasets: the Zarr episode store that recording, rollouts, DAgger and training share.

Layout (diffusion_policy ReplayBuffer compatible): ``data/<key>`` flat arrays with episodes
concatenated on axis 0, ``meta/episode_ends`` (exclusive cumulative ends) and one
``meta/episode_<name>`` value per episode; root attrs carry the schema version and recording setup.
"""

from protege.datasets.episode import Episode, EpisodeBuffer
from protege.datasets.errors import (
    CorruptDatasetError,
    DatasetError,
    DatasetLockedError,
    DatasetNotFoundError,
    IncompatibleDatasetError,
    MissingExtraError,
)
from protege.datasets.reader import Dataset, FrameArray
from protege.datasets.sampler import SequenceSampler, split_episodes
from protege.datasets.schema import SCHEMA_VERSION, Source
from protege.datasets.stats import compute_stats, load_stats
from protege.datasets.writer import EpisodeWriter

__all__ = [
    "SCHEMA_VERSION",
    "CorruptDatasetError",
    "Dataset",
    "DatasetError",
    "DatasetLockedError",
    "DatasetNotFoundError",
    "Episode",
    "EpisodeBuffer",
    "EpisodeWriter",
    "FrameArray",
    "IncompatibleDatasetError",
    "MissingExtraError",
    "SequenceSampler",
    "Source",
    "compute_stats",
    "load_stats",
    "split_episodes",
]

"""The chunk executor: when chunks are requested, when they take over, and what each strategy sends."""

from __future__ import annotations

import time

import numpy as np
import pytest

from protege.policies.chunking import ChunkExecutor, Chunking, FixedDelay, Guide, ThreadedInference, max_delay
from protege.policies.errors import PolicyError

HORIZON = 8


class Chunks:
    """predict(): chunk k (k = 1, 2, ...) holds 100 k + i at index i; remembers each request's window and guide."""

    def __init__(self) -> None:
        self.windows: list[int] = []
        self.guides: list[Guide | None] = []

    def __call__(self, window: int, guide: Guide | None) -> np.ndarray:
        self.windows.append(window)
        self.guides.append(guide)
        return (100.0 * len(self.windows) + np.arange(HORIZON))[:, None]


def run(strategy: str, delay: int, ticks: int, n_action_steps: int = 4, **kwargs) -> tuple[list[float], Chunks]:
    chunks = Chunks()
    executor = ChunkExecutor(FixedDelay(chunks, delay), Chunking(strategy, delay, **kwargs), HORIZON, n_action_steps,
                             idle=lambda action: -action)
    return [float(executor.step(t)[0]) for t in range(ticks)], chunks


def test_sync_without_delay_runs_each_chunk_from_its_start():
    actions, chunks = run("sync", 0, 9)
    assert actions == [100, 101, 102, 103, 200, 201, 202, 203, 300]
    assert chunks.windows == [0, 4, 8]  # each chunk sees the observation of the tick it starts at


def test_sync_holds_still_while_it_waits():
    actions, chunks = run("sync", 2, 10)
    assert actions == [100, 101, 102, 103, -103, -103, 200, 201, 202, 203]  # idle(last) for the 2-tick wait
    assert chunks.windows == [0, 4]


def test_naive_switches_when_the_chunk_arrives_skipping_the_ticks_gone_by():
    actions, chunks = run("naive", 2, 10)
    assert actions == [100, 101, 102, 103, 104, 105, 202, 203, 204, 205]
    assert chunks.windows == [0, 4, 8]


def test_a_delay_longer_than_the_execution_horizon_requests_as_often_as_chunks_arrive():
    actions, chunks = run("naive", 3, 9, n_action_steps=2)
    assert chunks.windows == [0, 3, 6]  # every max(2, 3) ticks: one chunk computed at a time
    assert actions == [100, 101, 102, 103, 104, 105, 203, 204, 205]


def test_ensemble_averages_what_each_arrived_chunk_says_for_the_tick():
    actions, _ = run("ensemble", 0, 3, n_action_steps=1, ensemble_coeff=1.0)
    w = np.exp(-np.arange(3.0))
    assert actions[0] == 100
    assert actions[1] == pytest.approx((w[0] * 101 + w[1] * 200) / w[:2].sum())  # oldest weighs most
    assert actions[2] == pytest.approx((w[0] * 102 + w[1] * 201 + w[2] * 300) / w.sum())


def test_ensemble_with_a_delay_uses_only_chunks_that_have_arrived():
    actions, _ = run("ensemble", 2, 6, n_action_steps=2, ensemble_coeff=0.0)
    # chunk 2 (requested at 2) arrives at 4; chunk 3 (requested at 4) at 6
    assert actions == [100, 101, 102, 103, pytest.approx((104 + 202) / 2), pytest.approx((105 + 203) / 2)]


def test_rtc_guides_each_chunk_with_the_rest_of_the_current_one():
    actions, chunks = run("rtc", 2, 9)
    assert chunks.guides[0] is None  # the first chunk has nothing to agree with
    guide = chunks.guides[1]
    assert guide is not None and guide.frozen == 2
    assert guide.actions[:, 0].tolist() == [104, 105, 106, 107]  # chunk 1 from the request tick (4) on
    assert actions[4:8] == [104, 105, 202, 203]


def test_guide_weights_hold_the_frozen_actions_and_decay_over_the_overlap():
    weights = Guide(np.zeros((6, 1)), frozen=2).weights(horizon=8)
    assert weights[:2].tolist() == [1.0, 1.0]
    assert np.all(np.diff(weights[2:6]) < 0) and 0 < weights[5] < weights[2] < 1
    assert weights[6:].tolist() == [0.0, 0.0]  # past the end of the current chunk


def test_reset_starts_the_next_episode_with_a_fresh_chunk():
    chunks = Chunks()
    executor = ChunkExecutor(FixedDelay(chunks, 2), Chunking("naive", 2), HORIZON, 4)
    for t in range(5):
        executor.step(t)  # chunk 2 requested at tick 4, still on its way
    executor.reset()
    assert float(executor.step(0)[0]) == 300 and executor.tick == 1


@pytest.mark.parametrize(("chunking", "horizon", "message"), [
    (Chunking("sync", -1), 8, "must be >= 0"),
    (Chunking("naive", 5), 8, "longer than the chunk allows"),
    (Chunking("rtc", 0), 1, "needs a policy that predicts chunks"),
    (Chunking("later", 0), 8, "unknown chunking"),
])
def test_bad_chunking_is_refused_in_one_line(chunking, horizon, message):
    with pytest.raises(PolicyError, match=message):
        chunking.check(horizon, min(4, horizon))


def test_max_delay_leaves_the_current_chunk_covering_the_wait():
    assert max_delay(16, 8) == 8
    assert max_delay(20, 1) == 10  # requested every `delay` ticks, each must last two delays
    assert max_delay(1, 1) == 0


def test_threaded_inference_never_blocks_the_loop_after_the_first_chunk():
    """Predictions take 30 ms, ticks 10 ms: the loop keeps sending the current chunk's actions meanwhile."""
    def slow(window, guide):
        time.sleep(0.03)
        return (100.0 * window + np.arange(HORIZON))[:, None]

    inference = ThreadedInference(slow, hz=100.0)
    executor = ChunkExecutor(inference, Chunking("naive", None), HORIZON, 2)
    waits, sent = [], []
    try:
        for t in range(12):
            started = time.perf_counter()
            sent.append(float(executor.step(t)[0]))
            waits.append(time.perf_counter() - started)
            time.sleep(0.01)
    finally:
        inference.close()
    assert max(waits[1:]) < 0.02  # only the first chunk is waited for
    assert inference.delay >= 3  # 30 ms at 100 Hz
    assert sent[:3] == [0, 1, 2] and len(executor.chunk_starts) >= 2  # later chunks took over on arrival
    switch = executor.chunk_starts[1]
    assert sent[switch] >= 100  # a chunk requested later, entered at the tick it arrived


def _policy(name: str, lowdim_dataset: str, tiny_config, **overrides):
    import torch

    from protege.datasets import Dataset, compute_stats
    from protege.policies.base import POLICIES, Spec

    torch.manual_seed(0)
    config = tiny_config(name, obs_keys=["ee_pos"], **overrides)
    stats = compute_stats(Dataset(lowdim_dataset), ["ee_pos", "action"])
    return POLICIES[name](config, Spec({"ee_pos": (3,)}, 7), stats).eval(), stats


def _committed(stats, n: int) -> np.ndarray:
    """n actions inside the dataset's range, as a current chunk would hold."""
    low, high = stats["action"]["min"], stats["action"]["max"]
    return low + (high - low) * np.linspace(0.2, 0.8, n)[:, None]


@pytest.mark.parametrize("overrides", [{}, {"rtc_train_max_delay": 3}])
def test_diffusion_chunks_start_with_the_committed_actions(lowdim_dataset, tiny_config, overrides):
    """Inpainting (and a prefix-trained model alike) returns the frozen actions as they are, and a guide changes
    the rest of the chunk; without one the chunk is the policy's own."""
    policy, stats = _policy("diffusion", lowdim_dataset, tiny_config, **overrides)
    policy.reset(seed=3)
    window = policy.observe({"ee_pos": np.zeros(3, dtype=np.float32)})
    free = policy.chunk(window)
    policy.reset(seed=3)
    guided = policy.chunk(window, Guide(_committed(stats, 6), frozen=3))
    assert guided[:3] == pytest.approx(_committed(stats, 6)[:3], abs=1e-4)
    assert not np.allclose(free[:3], guided[:3], atol=1e-3)


def test_diffusion_noise_is_seeded_per_episode(lowdim_dataset, tiny_config):
    policy, _ = _policy("diffusion", lowdim_dataset, tiny_config)
    obs = {"ee_pos": np.zeros(3, dtype=np.float32)}
    chunks = []
    for seed in (5, 5, 6):
        policy.reset(seed=seed)
        chunks.append(policy.chunk(policy.observe(obs)))
    assert np.array_equal(chunks[0], chunks[1]) and not np.array_equal(chunks[0], chunks[2])


def test_act_trained_with_a_prefix_follows_a_guide_and_learns_from_the_rest(lowdim_dataset, tiny_config):
    import torch

    from protege.policies.errors import PolicyError

    plain, _ = _policy("act", lowdim_dataset, tiny_config)
    with pytest.raises(PolicyError, match="rtc_train_max_delay"):
        plain.set_chunking(Chunking("rtc", 2))
    policy, stats = _policy("act", lowdim_dataset, tiny_config, rtc_train_max_delay=3)
    policy.set_chunking(Chunking("rtc", 2))
    window = policy.observe({"ee_pos": np.zeros(3, dtype=np.float32)})
    assert not np.allclose(policy.chunk(window), policy.chunk(window, Guide(_committed(stats, 6), frozen=3)))
    policy.train()
    batch = {"ee_pos": torch.zeros(4, 1, 3), "action": torch.randn(4, 8, 7),
             "action_is_pad": torch.zeros(4, 8, dtype=torch.bool)}
    policy(batch)["loss"].backward()
    assert policy.prefix_in is not None and policy.prefix_in.weight.grad is not None


def test_training_prefixes_leave_half_the_chunks_free_and_never_pass_the_largest_delay():
    import torch

    from protege.policies.base import committed_prefix

    torch.manual_seed(0)
    mask = committed_prefix(4000, 16, 6, torch.device("cpu"))
    lengths = mask.sum(dim=1)
    assert (mask == (torch.arange(16) < lengths[:, None])).all()  # a prefix: the first d actions
    assert 0.46 < (lengths == 0).float().mean() < 0.54
    assert lengths.max() == 6 and set(lengths.tolist()) == set(range(7))

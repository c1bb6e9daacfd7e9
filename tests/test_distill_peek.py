"""The trainer reads the first batch of a user's DataLoader before training (set-up checks);
the first epoch must still see exactly what a plain ``for x, y in loader`` loop sees: the same
samples in the same order, drawn by workers seeded the same way. Iterating the loader itself
broke that for ``persistent_workers=True`` (the peek started the workers, and the first epoch
reused them without drawing their seed, so its order came from another generator state) and
for samplers that keep state between iterations (advanced once by the peek)."""

import random
import threading

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

import pidkit_distill as pd

N, BATCH, EPOCHS = 24, 6, 2


class _Tagged(Dataset):
    """Sample i: (i, a draw of the process's torch RNG) and three noise features; the draw
    tells which seed the worker that read the sample had (a random augmentation)."""

    def __len__(self):
        return N

    def __getitem__(self, i):
        noise = torch.randn(3, generator=torch.Generator().manual_seed(i))
        return torch.cat([torch.tensor([float(i), torch.rand(()).item()]), noise]), i % 3


class _EpochCounter(Sampler):
    """A new permutation each iteration, from a counter that ``__iter__`` advances."""

    def __init__(self):
        self.epoch = 0

    def __len__(self):
        return N

    def __iter__(self):
        g = torch.Generator().manual_seed(100 + self.epoch)
        self.epoch += 1
        return iter(torch.randperm(N, generator=g).tolist())


class _PythonRandom(Sampler):
    """Shuffles with Python's global ``random`` (as some users' samplers do)."""

    def __len__(self):
        return N

    def __iter__(self):
        return iter(random.sample(range(N), N))


class _Locked(_EpochCounter):
    """Holds a lock, which cannot be copied."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()


class _Recorder(nn.Module):
    """A linear classifier that records the tags of the samples it trains on."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(5, 3)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x[:, :2].tolist())
        return self.linear(x)


LOADERS = {
    "persistent-workers-generator": lambda: DataLoader(
        _Tagged(), batch_size=BATCH, shuffle=True, num_workers=2, persistent_workers=True,
        generator=torch.Generator().manual_seed(3)),
    "persistent-workers-global-rng": lambda: DataLoader(
        _Tagged(), batch_size=BATCH, shuffle=True, num_workers=2, persistent_workers=True),
    "stateful-sampler": lambda: DataLoader(_Tagged(), batch_size=BATCH,
                                           sampler=_EpochCounter()),
    "python-random-sampler": lambda: DataLoader(_Tagged(), batch_size=BATCH,
                                                sampler=_PythonRandom()),
    "shuffle-generator": lambda: DataLoader(_Tagged(), batch_size=BATCH, shuffle=True,
                                            generator=torch.Generator().manual_seed(3)),
}


def _seed_everything():
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002  (the global state a user may rely on)


def _hand_loop(loader):
    _seed_everything()
    return [[x[:, :2].tolist() for x, _ in loader] for _ in range(EPOCHS)]


def _trainer_epochs(loader):
    student = _Recorder()
    _seed_everything()         # the set-up (its peek included) leaves every global RNG alone
    trainer = pd.Trainer(None, student, loader, method="none", epochs=EPOCHS, lr=0.01,
                         progress=False, checkpoint_every=0)
    trainer.fit()
    per_epoch = len(student.seen) // EPOCHS
    return [student.seen[e * per_epoch:(e + 1) * per_epoch] for e in range(EPOCHS)]


@pytest.mark.parametrize("name", list(LOADERS))
def test_the_first_epoch_sees_what_a_plain_loop_sees(name):
    expected = _hand_loop(LOADERS[name]())
    got = _trainer_epochs(LOADERS[name]())
    assert [len(epoch) for epoch in got] == [N // BATCH] * EPOCHS
    # the samples (first column) and the draws of the workers that read them (second), in
    # order, epoch by epoch
    assert got[0] == expected[0]
    assert got == expected


def test_a_sampler_that_cannot_be_copied_is_used_with_a_warning():
    loader = DataLoader(_Tagged(), batch_size=BATCH, sampler=_Locked())
    with pytest.warns(RuntimeWarning, match=r"^train_data: its sampler cannot be copied "
                      r"\(TypeError: .*lock.*\), so the check of its first batch iterated the "
                      r"sampler itself") as caught:
        pd.Trainer(None, _Recorder(), loader, method="none", epochs=1, progress=False)
    assert {w.filename for w in caught} == {__file__}
    assert loader.sampler.epoch == 1            # advanced once, as the warning says


def test_the_peek_leaves_the_global_random_states_as_they_were():
    loader = LOADERS["python-random-sampler"]()
    _seed_everything()
    states = (torch.get_rng_state(), random.getstate(),
              np.random.get_state()[1].copy())  # noqa: NPY002
    batch = pd.batches.peek_batch(loader)
    assert batch[0].shape == (BATCH, 5)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2])  # noqa: NPY002

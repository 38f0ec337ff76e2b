from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
import torch

from hptune.tasks import (
    DIGITS_SPLITS,
    MNIST1D_SPLITS,
    MissingDependencyError,
    TaskData,
    get_task,
    load_digits,
    load_mnist1d,
    stratified_split,
)
from hptune.tasks import data as data_module

LOADERS = {
    "mnist1d": (lambda: load_mnist1d(), MNIST1D_SPLITS, (40,)),
    "mnist1d-channels": (lambda: load_mnist1d(channel_dim=True), MNIST1D_SPLITS, (1, 40)),
    "digits": (lambda: load_digits(), DIGITS_SPLITS, (64,)),
}


def digest(data: TaskData) -> str:
    h = hashlib.sha256()
    for split in (data.train, data.val, data.test):
        for tensor in split.tensors:
            h.update(f"{tuple(tensor.shape)}{tensor.dtype}".encode())
            h.update(tensor.numpy().tobytes())
    return h.hexdigest()


def rows(x: torch.Tensor) -> set[bytes]:
    return {row.tobytes() for row in x.reshape(len(x), -1).numpy()}


@pytest.mark.parametrize("name", LOADERS)
def test_splits_have_fixed_sizes_shapes_dtypes_and_all_classes(name):
    load, sizes, sample_shape = LOADERS[name]
    data = load()
    assert data.sizes == sizes
    for split in (data.train, data.val, data.test):
        x, y = split.tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == sample_shape
        assert sorted(y.unique().tolist()) == list(range(10))


def test_digits_pixels_scaled_by_a_constant_to_unit_range():
    from sklearn.datasets import load_digits as sklearn_digits

    data = load_digits()
    x = torch.cat([data.train.tensors[0], data.val.tensors[0], data.test.tensors[0]])
    assert x.min() == 0.0 and x.max() == 1.0
    # 1797 images in, the same 1797 out, each divided by 16 (no statistic from any split).
    expected = np.sort((sklearn_digits().data / 16.0).astype(np.float32), axis=0)
    np.testing.assert_array_equal(np.sort(x.numpy(), axis=0), expected)


def test_mnist1d_matches_mnist1d_generator_with_val_carved_from_train():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args(as_dict=True)
    args.pop("url")
    assert data_module._mnist1d_args() == args  # hptune uses mnist1d's published defaults
    state = np.random.get_state()
    raw = make_dataset(get_dataset_args())
    np.random.set_state(state)

    data = load_mnist1d()
    train, val, test = (rows(s.tensors[0]) for s in (data.train, data.val, data.test))
    assert not train & val and not train & test and not val & test  # no sample in two splits
    assert train | val == rows(torch.tensor(raw["x"], dtype=torch.float32))
    np.testing.assert_array_equal(data.test.tensors[0].numpy(), raw["x_test"].astype(np.float32))
    np.testing.assert_array_equal(data.test.tensors[1].numpy(), raw["y_test"])


def test_stratified_split_by_hand():
    # 6 zeros then 4 ones; halves: positions 1, 3, 5, 7, 9 of the class-grouped order go to
    # the first part, i.e. 3 zeros and 2 ones, whatever the shuffle.
    labels = np.array([0] * 6 + [1] * 4)
    first, second = stratified_split(labels, (5, 5), seed=3)
    assert np.bincount(labels[first]).tolist() == [3, 2]
    assert np.bincount(labels[second]).tolist() == [3, 2]
    assert sorted(first.tolist() + second.tolist()) == list(range(10))
    with pytest.raises(
        data_module.HptuneError,
        match=re.escape("split sizes (5, 4) must add up to the 10 samples."),
    ):
        stratified_split(labels, (5, 4), seed=0)


def test_digits_splits_are_disjoint_and_stratified():
    from sklearn.datasets import load_digits as sklearn_digits

    y = sklearn_digits().target
    parts = stratified_split(y, DIGITS_SPLITS, seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(y)))
    counts = np.bincount(y)
    for part, size in zip(parts, DIGITS_SPLITS):
        assert len(part) == size
        # each class within one sample of its proportional share
        assert np.all(np.abs(np.bincount(y[part], minlength=10) - counts * size / len(y)) <= 1)
    x_val = load_digits().val.tensors[0].numpy()
    np.testing.assert_array_equal(x_val, (sklearn_digits().data[parts[1]] / 16).astype(np.float32))


def test_same_tensors_on_every_call_and_callers_cannot_corrupt_them():
    first = load_mnist1d()
    expected = digest(first)
    first.train.tensors[0].add_(1.0)  # a caller editing its data in place
    first.val.tensors[1].zero_()
    assert digest(load_mnist1d()) == expected
    assert digest(load_digits()) == digest(load_digits())


@pytest.mark.slow
def test_same_tensors_in_a_fresh_process_without_any_cache(fresh_cache):
    here = {name: digest(LOADERS[name][0]()) for name in ("mnist1d", "digits")}
    code = (
        "import hashlib\n"
        "from hptune.tasks import load_mnist1d, load_digits\n"
        "for data in (load_mnist1d(), load_digits()):\n"
        "    h = hashlib.sha256()\n"
        "    for split in (data.train, data.val, data.test):\n"
        "        for t in split.tensors:\n"
        "            h.update(f'{tuple(t.shape)}{t.dtype}'.encode()); h.update(t.numpy().tobytes())\n"
        "    print(h.hexdigest())\n"
    )
    env = {**os.environ, "HPTUNE_CACHE_DIR": ""}  # no disk cache: the child generates
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [here["mnist1d"], here["digits"]]


def test_disk_cache_is_written_atomically_and_read_back(fresh_cache, monkeypatch):
    expected = digest(load_mnist1d())
    (cached,) = fresh_cache.iterdir()
    assert cached.suffix == ".npz" and cached.name.startswith("mnist1d-")
    data_module.clear_caches()

    def no_generation():
        raise AssertionError("generated although a cache file exists")

    monkeypatch.setattr(data_module, "_generate_mnist1d", no_generation)
    assert digest(load_mnist1d()) == expected


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_cache_file_is_regenerated_and_rewritten(monkeypatch, tmp_path, damage):
    expected = digest(load_mnist1d())  # from the session's cache
    good = data_module._mnist1d_cache_path().read_bytes()
    monkeypatch.setenv("HPTUNE_CACHE_DIR", str(tmp_path))
    cached = data_module._mnist1d_cache_path()
    cached.write_bytes(b"not an npz file" if damage == "garbage" else good[: len(good) // 2])
    data_module.clear_caches()
    try:
        assert digest(load_mnist1d()) == expected
    finally:
        data_module.clear_caches()
    rewritten = data_module._read_cache(cached)  # whole again (zip timestamps differ)
    assert rewritten is not None and len(rewritten["x"]) == 4000
    assert [p.name for p in tmp_path.iterdir()] == [cached.name]  # no temporary file left


def test_empty_cache_dir_setting_turns_disk_cache_off(monkeypatch, tmp_path):
    monkeypatch.setenv("HPTUNE_CACHE_DIR", "")
    assert data_module.cache_dir() is None
    monkeypatch.delenv("HPTUNE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_module.cache_dir() == tmp_path / "hptune"


def test_building_every_dataset_never_touches_the_network(fresh_cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    for name in ("mnist1d-mlp", "mnist1d-cnn", "digits-mlp"):
        assert sum(get_task(name).datasets().sizes) in (5000, 1797)
    assert list(fresh_cache.iterdir())  # it really generated (the cache was empty)


def test_generation_leaves_the_global_random_generators_alone(fresh_cache):
    np.random.seed(123)
    random.seed(123)
    load_mnist1d()
    after = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    assert after == (np.random.random(), random.random())


@pytest.mark.parametrize(
    ("task", "hidden", "package"),
    [
        ("mnist1d-mlp", ["mnist1d", "mnist1d.data", "mnist1d.utils"], "mnist1d"),
        ("mnist1d-cnn", ["mnist1d", "mnist1d.data", "mnist1d.utils"], "mnist1d"),
        ("digits-mlp", ["sklearn", "sklearn.datasets"], "scikit-learn"),
    ],
)
def test_missing_data_package_says_how_to_install_it(
    fresh_cache, monkeypatch, task, hidden, package
):
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    message = f"task '{task}' needs the {package} package: pip install 'hptune[data]'"
    with pytest.raises(MissingDependencyError, match=re.escape(message)) as info:
        get_task(task).datasets()
    assert isinstance(info.value.__cause__, ImportError)
    assert str(pickle.loads(pickle.dumps(info.value))) == message

"""Task tokens end to end: each modality, determinism, streaming, metadata-only tokens, the cache and bad input."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from test_encoders import save_tiny_vit
from test_sources import write_imagefolder

from hf_spider.errors import InvalidDatasetError, InvalidEncoderError
from hf_spider.tokens.build import build_task_tokens, task_tokens_from_labels
from hf_spider.tokens.encoders import Encoder
from hf_spider.tokens.sampling import stratified_sample
from hf_spider.tokens.task import STATISTICS_NAMES, TaskDescription

TOPICS = ("sports", "cooking", "music", "weather", "finance", "medicine", "travel", "programming", "gardening", "cars")
TEMPLATES = (
    "A short note about {t}, number {i}.",
    "Today everyone talked about {t} ({i}).",
    "My favourite subject is {t}; see item {i}.",
    "News on {t}: story {i} of the day.",
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_tiny_vit(tmp_path_factory.mktemp("vit")))


@pytest.fixture(scope="module")
def imagefolder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 classes x 50 random-pixel images (the acceptance layout)."""
    return write_imagefolder(tmp_path_factory.mktemp("img") / "folder", {f"class_{c:02d}": 50 for c in range(20)})


@pytest.fixture(scope="module")
def text_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 topics x 200 rows = 2,000 rows."""
    rows = [(TEMPLATES[i % len(TEMPLATES)].format(t=t, i=i), t) for i in range(200) for t in TOPICS]
    path = tmp_path_factory.mktemp("csv") / "topics.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_image_tokens_are_deterministic_across_runs_and_workers(imagefolder: Path, tiny_vit: str) -> None:
    first = build_task_tokens(imagefolder, image_encoder=tiny_vit, use_cache=False)
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(imagefolder), split="train"
    )  # the same data, loaded once
    again = build_task_tokens(loaded, image_encoder=tiny_vit, use_cache=False)
    workers = build_task_tokens(loaded, image_encoder=tiny_vit, use_cache=False, num_workers=2)
    assert first.prototypes is not None and first.prototypes.shape == (20, 32)
    np.testing.assert_array_equal(first.prototypes, again.prototypes)
    np.testing.assert_array_equal(first.prototypes, workers.prototypes)
    assert first.label_embeddings is not None and first.label_embeddings.shape == (20, 384)
    assert first.sampling == {
        "per_class": 10,
        "seed": 0,
        "num_samples": 200,
        "skipped": 0,
        "unreadable_inputs": 0,
        "rows_read": 200,
        "streamed": False,
    }
    assert set(first.encoder) == {"text", "image"} and first.encoder["image"].startswith(tiny_vit + "@local-")
    other_seed = build_task_tokens(loaded, image_encoder=tiny_vit, use_cache=False, seed=1)
    assert not np.allclose(first.prototypes, other_seed.prototypes)


def test_text_prototypes_match_their_label_names(text_csv: Path) -> None:
    tokens = build_task_tokens(text_csv, use_cache=False, per_class=5)
    again = build_task_tokens(text_csv, use_cache=False, per_class=5, num_workers=2)
    assert tokens.prototypes is not None and tokens.label_embeddings is not None
    np.testing.assert_allclose(tokens.prototypes, again.prototypes, atol=1e-6)
    assert tokens.description.label_names == tuple(sorted(TOPICS))
    assert tokens.description.class_counts == (200,) * 10
    similarity = tokens.prototypes @ tokens.label_embeddings.T  # [C, C]
    assert (similarity.argmax(axis=1) == np.arange(10)).mean() >= 0.9
    stats = dict(zip(STATISTICS_NAMES, tokens.statistics, strict=True))
    assert stats["is_text"] == 1.0 and stats["class_balance"] == pytest.approx(1.0)
    assert stats["log_num_train_examples"] == pytest.approx(np.log1p(2000))


def test_cache_hit_skips_encoding(
    imagefolder: Path, tiny_vit: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build_task_tokens(imagefolder, image_encoder=tiny_vit, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1 and len(list(tmp_path.glob("*.json"))) == 1

    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cache hit must not encode")

    monkeypatch.setattr(Encoder, "encode", no_encoding)
    cached = build_task_tokens(imagefolder, image_encoder=tiny_vit, cache_dir=tmp_path)
    np.testing.assert_array_equal(built.prototypes, cached.prototypes)
    np.testing.assert_array_equal(built.label_embeddings, cached.label_embeddings)
    assert cached.description == built.description and cached.sampling == built.sampling
    assert cached.description.local  # a local folder stays local through the cache
    with pytest.raises(AssertionError, match="must not encode"):  # another seed is another key
        build_task_tokens(imagefolder, image_encoder=tiny_vit, cache_dir=tmp_path, seed=3)


def test_changed_encoder_files_miss_the_cache(tmp_path: Path) -> None:
    folder = write_imagefolder(tmp_path / "f", {"a": 3, "b": 3})
    encoder = save_tiny_vit(tmp_path / "enc")
    first = build_task_tokens(folder, image_encoder=str(encoder), cache_dir=tmp_path / "cache")
    save_tiny_vit(encoder, seed=1)  # new weights, same folder
    second = build_task_tokens(folder, image_encoder=str(encoder), cache_dir=tmp_path / "cache")
    assert first.encoder["image"] != second.encoder["image"]
    assert not np.allclose(first.prototypes, second.prototypes)


def test_streaming_reads_only_until_every_class_is_full() -> None:
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(TOPICS))})

    def rows():  # type: ignore[no-untyped-def]
        for i in range(1_000_000):
            yield {"text": f"{TOPICS[i % 10]} item {i}", "label": i % 10}

    stream = datasets.IterableDataset.from_generator(rows, features=features)
    tokens = build_task_tokens(stream, per_class=4, use_cache=False)
    again = build_task_tokens(stream, per_class=4, use_cache=False)
    assert tokens.sampling["streamed"] is True and tokens.sampling["num_samples"] == 40
    assert tokens.sampling["rows_read"] < 2_000  # the shuffle buffer (1,000) plus a few rows, not 1,000,000
    np.testing.assert_array_equal(tokens.prototypes, again.prototypes)
    assert tokens.description.class_counts is None


def test_metadata_only_task_gets_label_and_statistics_tokens(tmp_path: Path) -> None:
    description = TaskDescription(
        name="beans", modality="image", label_names=("angular_leaf_spot", "bean_rust", "healthy"), num_examples={}
    )
    tokens = build_task_tokens(description, cache_dir=tmp_path)
    assert tokens.prototypes is None and tokens.sampling == {}
    assert tokens.label_embeddings is not None and tokens.label_embeddings.shape == (3, 384)
    assert tokens.statistics is not None and tokens.statistics[STATISTICS_NAMES.index("is_image")] == 1.0
    assert set(tokens.encoder) == {"text"}
    legacy = task_tokens_from_labels(description)
    np.testing.assert_allclose(legacy.label_embeddings, tokens.label_embeddings, atol=1e-6)
    cached = build_task_tokens(description, cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.label_embeddings, tokens.label_embeddings)
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_corrupt_images_are_skipped_counted_and_replaced(tmp_path: Path, tiny_vit: str) -> None:
    folder = write_imagefolder(tmp_path / "f", {"a": 6, "b": 6})
    for i in range(3):
        (folder / "a" / f"bad{i}.png").write_bytes(b"not an image")
    tokens = build_task_tokens(folder, image_encoder=tiny_vit, per_class=6, use_cache=False)
    # left out (with a warning) when the folder is read, so the sampler never draws them
    assert tokens.sampling["unreadable_inputs"] == 3 and tokens.sampling["num_samples"] == 12


def test_class_with_only_corrupt_images_is_named(tmp_path: Path, tiny_vit: str) -> None:
    folder = write_imagefolder(tmp_path / "f", {"good": 3})
    (folder / "broken").mkdir()
    for i in range(2):
        (folder / "broken" / f"{i}.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InvalidDatasetError, match=r"'broken' of dataset 'f' have no readable image \(2 unreadable"):
        build_task_tokens(folder, image_encoder=tiny_vit, use_cache=False)


def test_empty_texts_are_skipped_and_a_class_of_them_is_an_error() -> None:
    ds = datasets.Dataset.from_dict({"text": ["good", "  ", "fine", "bad", ""], "label": ["p", "p", "p", "n", "n"]})
    tokens = build_task_tokens(ds, use_cache=False)
    assert tokens.sampling["skipped"] == 2 and tokens.sampling["num_samples"] == 3
    only_empty = datasets.Dataset.from_dict({"text": ["good", "", " "], "label": ["p", "n", "n"]})
    with pytest.raises(InvalidDatasetError, match="'n' have no usable sample"):
        build_task_tokens(only_empty, use_cache=False)


def test_class_without_samples_after_filtering_is_named() -> None:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["x", "y", "z"])}
    )
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c", "d"], "label": [0, 1, 0, 1]}, features=features)
    with pytest.raises(InvalidDatasetError, match=r"'z' have no usable sample.*ClassLabel\(names="):
        build_task_tokens(ds.filter(lambda r: True), use_cache=False)


def test_empty_label_name_is_refused() -> None:
    description = TaskDescription(name="t", modality="text", label_names=("ok", " "))
    with pytest.raises(InvalidDatasetError, match=r"empty label name\(s\) at id\(s\) \[1\]"):
        build_task_tokens(description, use_cache=False)


def test_an_encoder_of_the_wrong_modality_is_refused(imagefolder: Path) -> None:
    with pytest.raises(InvalidEncoderError, match="cannot encode images"):
        build_task_tokens(imagefolder, image_encoder="sentence-transformers/all-MiniLM-L6-v2", use_cache=False)


def test_stratified_sample_takes_at_most_per_class_and_follows_the_seed() -> None:
    ds = datasets.Dataset.from_dict({"x": [f"r{i}" for i in range(30)], "y": [0] * 25 + [1] * 5})
    kwargs = {"label_column": "y", "input_column": "x", "label_names": ["a", "b"], "label_index": lambda v: v}
    sample = stratified_sample(ds, prepare=lambda v: v, per_class=8, seed=0, **kwargs)  # type: ignore[arg-type]
    assert np.bincount(sample.labels).tolist() == [8, 5]
    assert all(int(x[1:]) < 25 for x in sample.inputs[:8]) and sample.rows_read == 13
    other = stratified_sample(ds, prepare=lambda v: v, per_class=8, seed=1, **kwargs)  # type: ignore[arg-type]
    assert other.inputs[:8] != sample.inputs[:8] and sorted(other.inputs[8:]) == sorted(sample.inputs[8:])
    with pytest.raises(InvalidDatasetError, match="per_class >= 1"):
        stratified_sample(ds, prepare=lambda v: v, per_class=0, **kwargs)  # type: ignore[arg-type]


def test_label_embeddings_are_cached_by_name_and_a_rerun_loads_no_encoder(tmp_path: Path, monkeypatch) -> None:
    from hf_spider.tokens import build

    labels = tuple(f"class number {i}" for i in range(40))
    description = TaskDescription(name="many", modality="text", label_names=labels)
    first = build_task_tokens(description, cache_dir=tmp_path, use_cache=False)
    assert len(list((tmp_path / "label_embeddings").glob("*.npy"))) == 1

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder was loaded although the label names are cached")

    monkeypatch.setattr(build, "load_encoder", no_encoder)
    renamed = TaskDescription(
        name="same labels, other task", modality="text", label_names=labels, num_examples={"train": 9}
    )
    again = build_task_tokens(renamed, cache_dir=tmp_path, use_cache=False)
    np.testing.assert_array_equal(again.label_embeddings, first.label_embeddings)
    with pytest.raises(AssertionError, match="encoder was loaded"):  # other names are not a hit
        build_task_tokens(TaskDescription(name="x", modality="text", label_names=labels[:-1]), cache_dir=tmp_path)

"""PTM tokens: content features any Hub model has, with the real MiniLM text encoder (offline)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from hf_spider.hub.records import EvalResult, ModelRecord
from hf_spider.tokens.archi2vec import FEATURE_NAMES, archi2vec
from hf_spider.tokens.ptm import (
    FAMILY_BUCKETS,
    SCALAR_NAMES,
    TextEmbedder,
    archi2vec_slice,
    family_bucket,
    family_slice,
    informative_labels,
    known_dataset_labels,
    ptm_tokens,
    text_slice,
    token_dim,
)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> TextEmbedder:
    return TextEmbedder(cache_dir=tmp_path_factory.mktemp("embeddings"))


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _scalar(tokens: np.ndarray, name: str) -> np.ndarray:
    return tokens[:, SCALAR_NAMES.index(name)]


def test_token_layout_and_missing_fields(embedder: TextEmbedder) -> None:
    full = ModelRecord(
        "a/vit-cats",
        pipeline_tag="image-classification",
        model_type="vit",
        num_parameters=86_000_000,
        input_size=224,
        label_names=("cat", "dog"),
        datasets=("cifar10",),
        eval_results=(EvalResult(dataset="cifar10", metric="accuracy", value=0.97),),
        downloads=1000,
    )
    bare = ModelRecord("b/unknown")
    tokens = ptm_tokens([full, bare], embedder=embedder)
    assert tokens.features.shape == (2, token_dim(embedder.dim))
    assert tokens.model_ids == ("a/vit-cats", "b/unknown")
    assert _scalar(tokens.features, "has_num_parameters").tolist() == [1.0, 0.0]
    assert _scalar(tokens.features, "card_accuracy")[0] == pytest.approx(0.97)
    assert _scalar(tokens.features, "is_image").tolist() == [1.0, 0.0]
    # a record with nothing known is zeros (read as missing, never as "tiny model") but for archi2vec's "other" family
    bare_arch = tokens.features[1, archi2vec_slice()]
    assert bare_arch.tolist() == archi2vec(bare).tolist() and bare_arch[FEATURE_NAMES.index("family=other")] == 1.0
    assert np.count_nonzero(tokens.features[1]) == 1
    family = tokens.features[0, family_slice()]
    assert family.sum() == 1.0 and family[zlib.crc32(b"vit") % FAMILY_BUCKETS] == 1.0
    np.testing.assert_array_equal(tokens.features[0, archi2vec_slice()], archi2vec(full))


def test_generic_label_names_are_not_embedded(embedder: TextEmbedder) -> None:
    assert informative_labels(("LABEL_0", "label 1", "class_2", "cat")) == ["cat"]
    tokens = ptm_tokens([ModelRecord("a/b", label_names=("LABEL_0", "LABEL_1"))], embedder=embedder)
    assert not tokens.features[0, text_slice("label_embedding", embedder.dim)].any()
    assert _scalar(tokens.features, "has_label_names")[0] == 0.0


def test_training_dataset_uses_its_known_label_names(embedder: TextEmbedder) -> None:
    labels = known_dataset_labels()["cifar10"]
    by_dataset = ptm_tokens([ModelRecord("a/b", datasets=("cifar10",))], embedder=embedder)
    by_labels = ptm_tokens([ModelRecord("a/b", label_names=labels)], embedder=embedder)
    np.testing.assert_allclose(
        by_dataset.features[0, text_slice("dataset_embedding", embedder.dim)],
        by_labels.features[0, text_slice("label_embedding", embedder.dim)],
        atol=1e-6,
    )


def test_label_embedding_reflects_the_labels(embedder: TextEmbedder) -> None:
    tokens = ptm_tokens(
        [
            ModelRecord("a/animals", label_names=("cat", "dog", "horse")),
            ModelRecord("b/pets", label_names=("kitten", "puppy", "pony")),
            ModelRecord("c/sentiment", label_names=("negative", "positive")),
        ],
        embedder=embedder,
    )
    emb = tokens.features[:, text_slice("label_embedding", embedder.dim)]
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


def test_family_bucket_is_stable_and_case_insensitive() -> None:
    assert family_bucket("ViT") == family_bucket("vit") == zlib.crc32(b"vit") % FAMILY_BUCKETS
    assert family_bucket(None) is None


def test_embeddings_persist_on_disk(tmp_path) -> None:
    first = TextEmbedder(cache_dir=tmp_path)
    vector = first.mean(["zebra", "okapi"])
    assert first.path.is_file()
    second = TextEmbedder(cache_dir=tmp_path)
    second._load()
    assert {"zebra", "okapi"} <= set(second._cache)
    np.testing.assert_array_equal(second.mean(["zebra", "okapi"]), vector)
    first.path.write_bytes(b"not an npz")  # a corrupt cache is a miss, never an error
    assert TextEmbedder(cache_dir=tmp_path).mean(["zebra"]).shape == vector.shape


def test_shipped_embeddings_cover_the_bundled_index(tmp_path, monkeypatch) -> None:
    from hf_spider.hub.index import load_bundled_index
    from hf_spider.tokens import ptm

    def no_encoding(*args, **kwargs):
        raise AssertionError("the bundled index's strings should come from the shipped embeddings")

    monkeypatch.setattr("hf_spider.tokens.encoders.encode_texts", no_encoding)
    tokens = ptm.ptm_tokens(load_bundled_index()[:40], embedder=ptm.TextEmbedder(cache_dir=tmp_path))
    assert tokens.features.shape[0] == 40 and np.isfinite(tokens.features).all()

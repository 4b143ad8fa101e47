"""archi2vec: identical architectures give identical vectors, families cluster, full configs and records both work."""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from hf_spider.hub.index import load_bundled_index
from hf_spider.hub.records import ModelRecord
from hf_spider.tokens.archi2vec import ARCHI2VEC_DIM, FEATURE_NAMES, archi2vec, archi2vec_matrix


def _config(model_type: str) -> dict:
    """A full ``config.json`` dict as transformers writes it (built offline from the config class)."""
    from transformers import AutoConfig

    return AutoConfig.for_model(model_type).to_dict()


def test_identical_configs_give_identical_vectors():
    config = _config("vit")
    np.testing.assert_array_equal(archi2vec(config), archi2vec(copy.deepcopy(config)))
    record = load_bundled_index()[0]
    np.testing.assert_array_equal(archi2vec(record), archi2vec(ModelRecord.from_dict(record.to_dict())))


def test_vector_layout_is_fixed():
    vectors = archi2vec_matrix([_config("bert"), _config("convnext"), ModelRecord(repo_id="x/y")])
    assert vectors.shape == (3, ARCHI2VEC_DIM) == (3, len(FEATURE_NAMES))
    assert vectors.dtype == np.float32 and np.isfinite(vectors).all()


def test_full_config_sizes_are_read():
    vit = archi2vec(_config("vit"))
    bert = archi2vec(_config("bert"))
    convnext = archi2vec(_config("convnext"))
    at = FEATURE_NAMES.index
    assert vit[at("family=vit")] == 1 and vit[at("mixer=attention")] == 1 and vit[at("known:patch_size")] == 1
    assert convnext[at("mixer=convolution")] == 1 and convnext[at("known:depth")] == 1  # depth = sum of stage depths
    assert bert[at("known:vocab_size")] == 1 and bert[at("known:patch_size")] == 0
    # vit-base and bert-base share depth 12 and width 768: the same size features
    assert vit[at("depth")] == bert[at("depth")] and vit[at("width")] == bert[at("width")]


def test_partial_record_marks_missing_sizes_unknown():
    record = ModelRecord(
        repo_id="a/b", pipeline_tag="image-classification", model_type="swin", num_parameters=28_000_000
    )
    vector = archi2vec(record)
    at = FEATURE_NAMES.index
    assert vector[at("family=swin")] == 1 and vector[at("known:log_parameters")] == 1
    assert vector[at("known:depth")] == 0 and vector[at("depth")] == 0


def test_bigger_model_of_a_family_moves_along_the_size_axes_only():
    small, large = _config("vit"), _config("vit")
    large.update(num_hidden_layers=24, hidden_size=1024)
    diff = archi2vec(large) - archi2vec(small)
    changed = {FEATURE_NAMES[i] for i in np.flatnonzero(diff)}
    assert changed == {"depth", "width", "mlp_ratio"}


def test_bundled_models_of_one_family_sit_closer_together_than_to_any_other_family():
    by_family: dict[str, list[np.ndarray]] = defaultdict(list)
    for record in load_bundled_index():
        if record.model_type:
            by_family[record.model_type].append(archi2vec(record))
    families = {f: np.stack(vs) for f, vs in by_family.items()}
    checked = 0
    for family, own in families.items():
        if len(own) < 2:
            continue
        within = np.linalg.norm(own[:, None] - own[None], axis=-1)[np.triu_indices(len(own), 1)].mean()
        nearest_other = min(
            np.linalg.norm(own[:, None] - other[None], axis=-1).mean() for f, other in families.items() if f != family
        )
        assert within < nearest_other, (family, within, nearest_other)
        checked += 1
    assert checked >= 10  # the bundled index has 14 families with two or more models

"""Every common repo layout reads into a full record: timm, timm_wrapper, transformers, sentence-transformers; lineage.

The fixtures are shaped like the real Hub files: a timm ``config.json`` as ``timm.models.push_to_hub`` writes it and
the card its ``generate_readme`` writes, a transformers port with ``_name_or_path``, a sentence-transformers repo with
its module files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hf_spider.hub.layouts import derive_fields, timm_family
from hf_spider.hub.local import read_model_dir
from hf_spider.hub.pretraining import pretraining_sources
from hf_spider.hub.records import ModelRecord
from hf_spider.tokens.facts import facts_for
from hf_spider.tokens.lineage import ancestors, inferred_base

TIMM_CONFIG = {
    "architecture": "resnet50",
    "num_classes": 1000,
    "num_features": 2048,
    "global_pool": "avg",
    "pretrained_cfg": {
        "tag": "a1_in1k",
        "custom_load": False,
        "input_size": [3, 224, 224],
        "test_input_size": [3, 288, 288],
        "fixed_input_size": False,
        "interpolation": "bicubic",
        "crop_pct": 0.95,
        "test_crop_pct": 1.0,
        "crop_mode": "center",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "num_classes": 1000,
        "pool_size": [7, 7],
        "first_conv": "conv1",
        "classifier": "fc",
    },
}
TIMM_CARD = """---
tags:
- image-classification
- timm
- transformers
library_name: timm
license: apache-2.0
datasets:
- imagenet-1k
---
# Model card for resnet50.a1_in1k

A ResNet-B image classification model.

## Model Details
- **Model Type:** Image classification / feature backbone
- **Model Stats:**
  - Params (M): 25.6
  - GMACs: 4.1
  - Activations (M): 11.1
  - Image size: train = 224 x 224, test = 288 x 288
- **Papers:**
  - ResNet strikes back: An improved training procedure in timm: https://arxiv.org/abs/2110.00476
- **Original:** https://github.com/huggingface/pytorch-image-models

## Model Comparison
|model|img_size|top1|top5|param_count|gmacs|macts|img/sec|
|---|---|---|---|---|---|---|---|
|[resnet152d.ra2_in1k](https://huggingface.co/timm/resnet152d.ra2_in1k)|320|83.68|96.73|60.2|24.1|47.7|1404|
|[resnet50.a1_in1k](https://huggingface.co/timm/resnet50.a1_in1k)|288|81.22|95.11|25.6|6.8|18.4|2089|
"""


def write_repo(root: Path, files: dict[str, object]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_timm_repo_reads_into_a_full_record(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "timm/resnet50.a1_in1k", {"config.json": TIMM_CONFIG, "README.md": TIMM_CARD})
    record = read_model_dir(repo, "timm/resnet50.a1_in1k")
    assert record.error is None
    assert record.architectures == ("resnet50",) and record.model_type == "resnet"
    assert record.library_name == "timm" and record.modality == "image"
    assert record.input_size == 224 and record.num_labels == 1000
    assert record.num_parameters == 25_600_000  # the card's Params (M): no weights in the folder
    assert record.gmacs == pytest.approx(4.1) and record.imagenet_top1 == pytest.approx(81.22)  # its own table row
    assert record.pretrained_tag == "a1_in1k" and record.pretraining == ("imagenet-1k",)
    facts = facts_for(record)
    assert facts is not None and facts.source == "exact" and facts.top1 == pytest.approx(81.24)


def test_a_timm_config_alone_is_still_an_image_model(tmp_path: Path) -> None:
    """No card, no pipeline tag: the timm config is enough to know the modality, family and pre-training."""
    config = {**TIMM_CONFIG, "architecture": "convnext_base", "pretrained_cfg": {"tag": "clip_laion2b_augreg_ft_in12k"}}
    record = read_model_dir(write_repo(tmp_path / "repo", {"config.json": config}), "someone/convnext")
    assert record.modality == "image" and record.model_type == "convnext"
    assert record.pretraining == ("laion-2b", "imagenet-12k")


def test_a_timm_wrapper_config_reads_like_the_timm_repo(tmp_path: Path) -> None:
    config = {
        "architecture": "resnet50.a1_in1k",
        "model_type": "timm_wrapper",
        "num_classes": 1000,
        "num_features": 2048,
        "global_pool": "avg",
        "pretrained_cfg": {"input_size": [3, 224, 224]},
        "label_names": [f"class {i}" for i in range(1000)],
    }
    record = read_model_dir(write_repo(tmp_path / "repo", {"config.json": config}), "someone/resnet50-wrapped")
    assert record.architectures == ("resnet50",) and record.model_type == "resnet" and record.modality == "image"
    assert record.pretrained_tag == "a1_in1k" and record.input_size == 224 and len(record.label_names or ()) == 1000
    facts = facts_for(record)  # the wrapped timm model's own facts
    assert facts is not None and facts.source == "exact" and facts.matched == "timm/resnet50.a1_in1k"


def test_a_transformers_port_reads_its_lineage_and_architecture_facts(tmp_path: Path) -> None:
    config = {
        "architectures": ["ResNetForImageClassification"],
        "model_type": "resnet",
        "depths": [3, 4, 6, 3],
        "hidden_sizes": [256, 512, 1024, 2048],
        "layer_type": "bottleneck",
        "id2label": {"0": "cat", "1": "dog"},
        "_name_or_path": "microsoft/resnet-50",
    }
    card = "---\nbase_model: microsoft/resnet-50\ndatasets:\n- imagenet-1k\n---\n# cats and dogs\n"
    repo = write_repo(tmp_path / "repo", {"config.json": config, "README.md": card})
    record = read_model_dir(repo, "someone/resnet50-pets")
    assert record.modality == "image" and record.num_labels == 2 and record.label_names == ("cat", "dog")
    assert record.base_models == ("microsoft/resnet-50",)  # card and config name the same base once
    assert record.pretraining == ("imagenet-1k",)
    ported = facts_for(ModelRecord("microsoft/resnet-50", model_type="resnet", num_parameters=25_557_032))
    assert ported is not None and ported.source == "architecture" and "resnet50" in ported.matched


def test_a_sentence_transformers_repo_reads_its_modules(tmp_path: Path) -> None:
    files = {
        "config.json": {"architectures": ["BertModel"], "model_type": "bert", "max_position_embeddings": 512},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "config_sentence_transformers.json": {"__version__": {"sentence_transformers": "2.0.0"}},
        "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": False},
        "README.md": "---\npipeline_tag: sentence-similarity\nlanguage: en\n---\n# all-MiniLM-L6-v2\n",
    }
    record = read_model_dir(write_repo(tmp_path / "repo", files), "sentence-transformers/all-MiniLM-L6-v2")
    assert record.library_name == "sentence-transformers" and record.modality == "text"
    assert record.model_type == "bert" and record.input_size == 256  # the sequence length it encodes
    assert record.extra["sentence_transformers_pooling"] == "1_Pooling"


def test_modality_is_inferred_without_a_pipeline_tag() -> None:
    assert ModelRecord("a/b", library_name="timm").modality == "image"
    assert ModelRecord("a/b", library_name="sentence-transformers").modality == "text"
    assert ModelRecord("a/b", model_type="densenet").modality == "image"
    assert ModelRecord("a/b", architectures=("FooForSequenceClassification",)).modality == "text"
    assert ModelRecord("a/b", model_type="something-new").modality is None


def test_timm_families_and_pretraining_tags() -> None:
    names = ("resnet50", "mobilenetv2_100", "tf_efficientnet_b0", "inception_v3", "convnextv2_tiny", "vit_base")
    assert [timm_family(n) for n in names] == [
        "resnet",
        "mobilenet_v2",
        "efficientnet",
        "inception",
        "convnextv2",
        "vit",
    ]
    assert pretraining_sources("fb_swsl_ig1b_ft_in1k") == ("instagram-1b", "imagenet-1k")
    assert pretraining_sources("mim_m38m_ft_in22k_in1k") == ("merged-38m", "imagenet-21k", "imagenet-1k")
    assert pretraining_sources("bert-base-uncased") == ()


def test_card_model_index_and_tags_are_derived() -> None:
    from hf_spider.hub.records import EvalResult

    record = derive_fields(
        ModelRecord(
            "a/vit",
            tags=("base_model:finetune:google/vit-base-patch16-224", "dataset:imagenet-21k"),
            eval_results=(EvalResult("imagenet-1k", "accuracy", 0.812),),
            label_names=("a", "b", "c"),
        )
    )
    assert record.base_models == ("google/vit-base-patch16-224",)
    assert record.imagenet_top1 == pytest.approx(81.2) and record.num_labels == 3
    assert record.pretraining == ("imagenet-21k",)


def test_lineage_resolves_two_hops_and_survives_a_cycle() -> None:
    lookup = {
        "x/child": ModelRecord("x/child", base_models=("x/parent",)),
        "x/parent": ModelRecord("x/parent", base_models=("org/root",)),
        "org/root": ModelRecord("org/root", base_models=("x/child",)),  # a cycle back to the start
    }
    assert ancestors(lookup["x/child"], lookup) == ("x/parent", "org/root")
    assert ancestors(lookup["x/parent"], lookup) == ("org/root", "x/child")
    assert ancestors(ModelRecord("x/alone"), lookup) == ()
    self_loop = ModelRecord("x/self", base_models=("x/self",))
    assert ancestors(self_loop, {"x/self": self_loop}) == ()


def test_a_base_is_guessed_from_a_repo_name_only_where_it_is_a_fine_tune() -> None:
    known = ["bert-base-uncased", "facebook/convnext-base-224", "google/vit-base-patch16-224"]
    assert inferred_base("someone/bert-base-uncased-finetuned-sst2", known) == "bert-base-uncased"
    assert inferred_base("facebook/convnext-base-224-22k", known) is None  # same owner, a pre-training sibling
    assert inferred_base("someone/bert-base", known) is None


def test_a_timm_repo_absent_from_the_facts_table_still_ranks(tmp_path: Path) -> None:
    """An architecture timm has no results for is placed from its family, size and pre-training by the default
    scorer, with evidence and confidence, beside timm repos it knows."""
    from hf_spider.ranking import default_ranker, rank
    from hf_spider.tokens.build import task_tokens_from_labels
    from hf_spider.tokens.task import TaskDescription

    unknown = {**TIMM_CONFIG, "architecture": "resnet_made_up", "pretrained_cfg": {"tag": "in21k_ft_in1k"}}
    repos = [
        read_model_dir(write_repo(tmp_path / "a", {"config.json": unknown}), "timm/resnet_made_up.in21k_ft_in1k"),
        read_model_dir(write_repo(tmp_path / "b", {"config.json": TIMM_CONFIG}), "timm/resnet50.a1_in1k"),
    ]
    assert facts_for(repos[0]) is None
    task = task_tokens_from_labels(TaskDescription(name="pets", modality="image", label_names=("cat", "dog")))
    shortlist = rank(task, repos, ranker=default_ranker())
    by_id = {e.model_id: e for e in shortlist}
    made_up = by_id["timm/resnet_made_up.in21k_ft_in1k"]
    assert made_up.evidence == "facts" and made_up.reasons[0] == "pre-training source"  # its tag names in21k
    assert by_id["timm/resnet50.a1_in1k"].reasons[0].startswith("ImageNet top-1 81.2 (exact")
    assert all(np.isfinite(e.score) and 0 <= (e.expected_percentile or 0) <= 100 for e in shortlist)
    assert any(
        "no transfer record, nor an ancestor" in note and "same for every task" in note for note in shortlist.notes
    )


def test_a_repo_that_states_no_size_takes_it_from_its_imagenet_facts(tmp_path: Path) -> None:
    """A timm config without its card, and a transformers port naming those timm weights, are as large as the
    measured model: the cold-start scorer reads size first, and an unknown size would flatten a pool of CNNs."""
    from hf_spider.tokens.ptm import SCALAR_NAMES, ptm_tokens

    bare = read_model_dir(write_repo(tmp_path / "bare", {"config.json": TIMM_CONFIG}), "timm/resnet50.a1_in1k")
    carded = read_model_dir(
        write_repo(tmp_path / "carded", {"config.json": TIMM_CONFIG, "README.md": TIMM_CARD}), "timm/resnet50.a1_in1k"
    )
    port_config = {"model_type": "resnet", "architectures": ["ResNetForImageClassification"]}
    port = read_model_dir(
        write_repo(tmp_path / "port", {"config.json": {**port_config, "_name_or_path": "timm/resnet50.a1_in1k"}}),
        "someone/resnet50-port",
    )
    unknown = read_model_dir(write_repo(tmp_path / "unknown", {"config.json": port_config}), "someone/resnet-port")
    assert bare.num_parameters is None and port.num_parameters is None and carded.num_parameters is not None
    tokens = ptm_tokens([bare, carded, port, unknown], known=[])
    size = tokens.features[:, SCALAR_NAMES.index("log_num_parameters")]
    known = tokens.features[:, SCALAR_NAMES.index("has_num_parameters")]
    assert known.tolist() == [1.0, 1.0, 1.0, 0.0]  # a port without facts stays of unknown size
    np.testing.assert_allclose(size[[0, 2]], size[1], atol=0.01)  # 25.56M measured vs 25.6M on the card

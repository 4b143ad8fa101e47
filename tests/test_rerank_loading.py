"""Loading a candidate (:mod:`hf_spider.rerank.loading`, :mod:`hf_spider.rerank.checks`): hostile configs and weights
are one failed candidate with a reason, refused before anything is allocated or unpickled."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_rerank import options, save_bert, save_sentence_transformer, save_timm, save_vit

from hf_spider.errors import CandidateLoadError
from hf_spider.rerank.checks import MAX_IMAGE_SIDE, timm_model_arguments
from hf_spider.rerank.loading import load_candidate
from hf_spider.rerank.preprocess import PreparedInputs


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _refusal(record, root: Path, modality: str) -> str:
    with pytest.raises(CandidateLoadError) as info:
        load_candidate(record, modality=modality, options=options(root))
    return info.value.reason


class _Payload:
    """A pickle that writes a file when it is unpickled (what a hostile ``.pth`` does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pickle ran')",))


@pytest.fixture
def torch_loads(monkeypatch) -> list[str]:
    """Every path ``torch.load`` is called on (timm's ``load_checkpoint`` calls it)."""
    import torch

    calls: list[str] = []
    real = torch.load

    def spy(f, *args, **kwargs):
        calls.append(str(f))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


# ----------------------------------------------------------------------------------------------- 1. timm keys


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("model_args", {"checkpoint_path": "extra.pth"}, "checkpoint_path"),
        ("model_args", {"pretrained_cfg_overlay": {"file": "extra.pth"}}, "pretrained_cfg_overlay"),
        ("model_args", {"pretrained": True}, "pretrained"),
        ("model_args", {"cache_dir": "/tmp"}, "cache_dir"),
        ("pretrained_cfg", {"file": "extra.pth", "input_size": [3, 32, 32]}, "file"),
        ("pretrained_cfg", {"hf_hub_id": "evil/repo", "input_size": [3, 32, 32]}, "hf_hub_id"),
        ("architecture", "hf-hub:evil/repo", "hf-hub"),
    ],
)
def test_a_timm_config_naming_a_file_or_a_loading_option_is_refused_before_timm_reads_it(
    tmp_path, torch_loads, field, value, named
) -> None:
    import torch

    record = save_timm(tmp_path, "evil/timm")
    folder = tmp_path / "evil/timm"
    marker = tmp_path / "PWNED"
    torch.save({"x": _Payload(marker)}, folder / "extra.pth")
    if field == "model_args" and "checkpoint_path" in value:
        value = {"checkpoint_path": str(folder / "extra.pth")}
    _edit(folder / "config.json", **{field: value})
    reason = _refusal(record, tmp_path, "image")
    assert named in reason and "drop it" in reason
    assert torch_loads == [] and not marker.exists()


def test_timm_model_args_accept_architecture_settings_only() -> None:
    pytest.importorskip("timm")
    allowed = timm_model_arguments()
    assert {"in_chans", "img_size", "depth", "embed_dim", "drop_path_rate", "global_pool"} <= allowed
    refused = {"checkpoint_path", "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "device"}
    assert not refused & allowed


# ----------------------------------------------------------------------------------------------- 2. bombs


def test_a_config_stacking_200000_layers_is_refused_before_any_layer_is_built(tmp_path, monkeypatch) -> None:
    from transformers.models.bert import modeling_bert

    record = save_bert(tmp_path, "evil/layers")
    _edit(tmp_path / "evil/layers/config.json", num_hidden_layers=200_000)
    built = []
    real = modeling_bert.BertLayer.__init__

    def counted(self, *args, **kwargs):  # without the check this ran for minutes, then ran out of memory
        built.append(1)
        if len(built) > 50:
            raise RuntimeError("built past 50 layers")
        real(self, *args, **kwargs)

    monkeypatch.setattr(modeling_bert.BertLayer, "__init__", counted)
    start = time.perf_counter()
    reason = _refusal(record, tmp_path, "text")
    assert "num_hidden_layers = 200000" in reason and built == []
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize(
    "changes",
    [{"vocab_size": 4_000_000_000}, {"hidden_size": 200_000, "intermediate_size": 400_000}],
)
def test_a_config_describing_far_more_parameters_than_its_weights_is_refused(tmp_path, changes) -> None:
    record = save_bert(tmp_path, "evil/bomb")
    _edit(tmp_path / "evil/bomb/config.json", **changes)
    reason = _refusal(record, tmp_path, "text")
    assert "config.json describes" in reason and "weights hold" in reason


def test_an_image_processor_resizing_past_the_cap_is_refused_at_load(tmp_path) -> None:
    record = save_vit(tmp_path, "evil/vit")
    _edit(tmp_path / "evil/vit/preprocessor_config.json", size={"height": 40_000, "width": 40_000})
    reason = _refusal(record, tmp_path, "image")
    assert "preprocessor_config.json's 'size'" in reason and str(MAX_IMAGE_SIDE) in reason


def test_a_timm_input_size_past_the_cap_is_refused_at_load(tmp_path) -> None:
    record = save_timm(tmp_path, "evil/timm")
    config = json.loads((tmp_path / "evil/timm/config.json").read_text())
    config["pretrained_cfg"]["input_size"] = [3, 40_000, 40_000]
    (tmp_path / "evil/timm/config.json").write_text(json.dumps(config))
    reason = _refusal(record, tmp_path, "image")
    assert "'input_size' asks for 40000 x 40000 pixels" in reason


# ----------------------------------------------------------------------------------------------- 3. missing weights


def test_weights_holding_none_of_the_models_tensors_fail_the_candidate(tmp_path) -> None:
    import torch
    from safetensors.torch import save_file

    record = save_bert(tmp_path, "evil/empty")
    save_file({"unused": torch.zeros(1)}, str(tmp_path / "evil/empty/model.safetensors"), metadata={"format": "pt"})
    reason = _refusal(record, tmp_path, "text")
    assert "21 of its 23 weight tensors are missing" in reason


def test_a_classification_head_missing_from_the_weights_is_drawn_afresh_not_refused(tmp_path) -> None:
    record = save_bert(tmp_path, "tiny/base")  # backbone weights only
    _edit(tmp_path / "tiny/base/config.json", architectures=["BertForSequenceClassification"])
    candidate = load_candidate(record, modality="text", options=options(tmp_path))
    assert type(candidate.model).__name__ == "BertForSequenceClassification"


# ----------------------------------------------------------------------------------------------- 4. reasons


def test_a_shape_mismatch_names_the_tensor(tmp_path) -> None:
    record = save_bert(tmp_path, "evil/shapes", hidden=16)
    _edit(tmp_path / "evil/shapes/config.json", hidden_size=32, intermediate_size=64)
    reason = _refusal(record, tmp_path, "text")
    assert "tensor 'embeddings.LayerNorm.bias' is [16] in the weights but config.json makes it [32]" in reason
    assert "ignore_mismatched_sizes" not in reason


def test_a_bad_timm_pretrained_cfg_says_what_is_wrong(tmp_path) -> None:
    record = save_timm(tmp_path, "evil/timm")
    config = json.loads((tmp_path / "evil/timm/config.json").read_text())
    config["pretrained_cfg"] = {"input_size": "huge", "mean": "x", "std": None, "crop_pct": -1}
    (tmp_path / "evil/timm/config.json").write_text(json.dumps(config))
    reason = _refusal(record, tmp_path, "image")
    assert "'input_size' is 'huge'" in reason and "AssertionError" not in reason


def test_an_allocation_failure_says_the_model_asked_for_more_memory(tmp_path, monkeypatch) -> None:
    from hf_spider.rerank import loading

    record = save_bert(tmp_path, "tiny/bert")
    candidate = load_candidate(record, modality="text", options=options(tmp_path))
    prepared = PreparedInputs(["w1 w2", "w3"], "text", options(tmp_path))

    def refuse(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
            "allocate 19200000000 bytes. Error code 12 (Cannot allocate memory)"
        )

    monkeypatch.setattr(PreparedInputs, "_run", refuse)
    with pytest.raises(CandidateLoadError) as info:
        prepared.batches(candidate)
    assert "more memory than is available (19.2 GB in one allocation)" in info.value.reason
    assert "enforce fail" not in info.value.reason

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(loading.transformers_lib().AutoModel, "from_pretrained", no_memory)
    assert "more memory than is available" in _refusal(record, tmp_path, "text")


# ----------------------------------------------------------------------------------------------- config files


def test_a_config_past_the_crawlers_cap_is_refused_without_reading_it_whole(tmp_path, monkeypatch) -> None:
    """Stage two read a candidate's JSON files whole (``read_text``): a runaway ``config.json`` went into memory."""
    from hf_spider.hub import sanitize

    record = save_bert(tmp_path, "evil/big")
    config = tmp_path / "evil/big/config.json"
    monkeypatch.setattr(sanitize, "LIMITS", sanitize.HubLimits(file_bytes=config.stat().st_size - 1))
    assert "'config.json' is larger than" in _refusal(record, tmp_path, "text")


def test_a_pooling_config_that_is_a_fifo_is_refused_without_blocking(tmp_path) -> None:
    """``read_text`` on a FIFO waits for a writer that never comes (a Pooling module's config had no regular-file
    check)."""
    import os
    import threading

    record = save_sentence_transformer(tmp_path, "evil/fifo")
    pooling = tmp_path / "evil/fifo/1_Pooling/config.json"
    pooling.unlink()
    os.mkfifo(pooling)
    refusals: list[str] = []
    worker = threading.Thread(target=lambda: refusals.append(_refusal(record, tmp_path, "text")), daemon=True)
    worker.start()
    worker.join(timeout=60)
    if worker.is_alive():  # unblock the reader so the test process can end
        with open(os.open(pooling, os.O_WRONLY | os.O_NONBLOCK), "w"):
            pass
        pytest.fail("reading a FIFO Pooling config blocked")
    assert "'config.json' is not a regular file" in refusals[0]

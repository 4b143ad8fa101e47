"""Loading and describing a task source: detection of modality and columns, split sizes, card metadata, bad input."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hf_spider.errors import InvalidDatasetError
from hf_spider.tokens.sources import describe_hub_dataset, description_from_card, load_task_source

BEANS_CARD = {
    "dataset_info": {
        "features": [
            {"name": "image_file_path", "dtype": "string"},
            {"name": "image", "dtype": "image"},
            {
                "name": "labels",
                "dtype": {"class_label": {"names": {"0": "angular_leaf_spot", "1": "bean_rust", "2": "healthy"}}},
            },
        ],
        "splits": [{"name": "train", "num_examples": 1034}, {"name": "validation", "num_examples": 133}],
    }
}


def write_imagefolder(root: Path, counts: dict[str, int], *, size: int = 16, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_imagefolder_is_an_image_task_with_class_counts(tmp_path: Path) -> None:
    task = load_task_source(write_imagefolder(tmp_path / "pets", {"cat": 3, "dog": 5}))
    d = task.description
    assert (d.name, d.modality, d.label_column, d.input_column) == ("pets", "image", "label", "image")
    assert d.label_names == ("cat", "dog")
    assert d.class_counts == (3, 5)
    assert d.num_examples == {"train": 8}
    assert (d.source, d.local, d.hub_dataset) == ("pets", True, None)  # the folder's name is no Hub dataset's


def test_csv_with_string_labels_is_a_text_task(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    pd.DataFrame(
        {"review": ["good", "bad", "fine", "awful"], "stars": ["5", "1", "4", "1"], "id": [1, 2, 3, 4]}
    ).to_csv(path, index=False)
    d = load_task_source(path, label_column="stars").description
    assert (d.modality, d.input_column, d.label_names, d.class_counts) == ("text", "review", ("1", "4", "5"), (2, 1, 1))


def test_all_split_sizes_are_recorded_and_split_is_chosen() -> None:
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["x", "y", "z"], "label": [0, 1, 1]}, features=features),
            "test": datasets.Dataset.from_dict({"text": ["u", "v"], "label": [0, 1]}, features=features),
        }
    )
    d = load_task_source(dd, split="test").description
    assert d.num_examples == {"train": 3, "test": 2}
    assert d.class_counts == (1, 1)
    assert not d.local
    with pytest.raises(InvalidDatasetError, match=r"no split 'dev'.*train, test"):
        load_task_source(dd, split="dev")


def test_a_config_with_local_data_is_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngood,pos\nbad,neg\n")
    with pytest.raises(InvalidDatasetError, match="config 'en' \\(--config\\) names a configuration of a Hub dataset"):
        load_task_source(path, config="en")
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
    with pytest.raises(InvalidDatasetError, match="a datasets object has none"):
        load_task_source(ds, config="en")


def test_save_to_disk_folder_loads(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_dict({"sentence": ["a", "b", "c"], "label": [0, 1, 0]})
    ds.save_to_disk(tmp_path / "saved")
    d = load_task_source(tmp_path / "saved").description
    assert (d.modality, d.input_column, d.label_names) == ("text", "sentence", ("0", "1"))


def test_stream_with_class_labels_has_unknown_counts() -> None:
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])})
    stream = datasets.IterableDataset.from_generator(
        lambda: ({"text": f"t{i}", "label": i % 2} for i in range(10)), features=features
    )
    d = load_task_source(stream).description
    assert d.label_names == ("a", "b") and d.class_counts is None


def test_stream_without_class_labels_names_the_fix() -> None:
    stream = datasets.IterableDataset.from_generator(lambda: ({"text": f"t{i}", "label": str(i % 2)} for i in range(4)))
    with pytest.raises(InvalidDatasetError, match="ClassLabel"):
        load_task_source(stream)


def test_no_label_column_names_the_fix() -> None:
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "score": [0.1, 0.2]})
    with pytest.raises(InvalidDatasetError, match=r"no label column.*label_column="):
        load_task_source(ds)


def test_a_single_class_is_refused() -> None:
    ds = datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "x"]})
    with pytest.raises(InvalidDatasetError, match=r"single class.*at least 2"):
        load_task_source(ds)


def test_mixed_modalities_need_an_input_column(tmp_path: Path) -> None:
    image = Image.new("RGB", (4, 4))
    ds = datasets.Dataset.from_dict(
        {"image": [image, image], "text": ["a", "b"], "label": [0, 1]},
        features=datasets.Features(
            {
                "image": datasets.Image(),
                "text": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["p", "q"]),
            }
        ),
    )
    with pytest.raises(InvalidDatasetError, match=r"mixes image column 'image' and text column 'text'.*input_column="):
        load_task_source(ds)
    assert load_task_source(ds, input_column="text").description.modality == "text"


def test_missing_path_and_unknown_file_type(tmp_path: Path) -> None:
    with pytest.raises(InvalidDatasetError, match="does not exist"):
        load_task_source(tmp_path / "nope" / "data.csv")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(InvalidDatasetError, match="unknown dataset file type"):
        load_task_source(tmp_path / "data.xlsx")


def test_card_metadata_gives_labels_and_sizes_without_data() -> None:
    d = description_from_card("beans", BEANS_CARD)
    assert d.modality == "image"
    assert d.label_names == ("angular_leaf_spot", "bean_rust", "healthy")
    assert d.num_examples == {"train": 1034, "validation": 133}
    assert d.label_column is None and d.class_counts is None


def test_card_without_class_labels_names_the_fix() -> None:
    card = {"dataset_info": {"features": [{"name": "text", "dtype": "string"}, {"name": "label", "dtype": "string"}]}}
    with pytest.raises(InvalidDatasetError, match=r"not a class label.*load its data"):
        description_from_card("x", card)
    with pytest.raises(InvalidDatasetError, match="no dataset_info features for config 'other'"):
        description_from_card("beans", BEANS_CARD, config="other")


@pytest.fixture
def card_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Hub on 127.0.0.1 that answers ``GET /api/datasets/<id>`` for one dataset, ``beans``, and 404 otherwise."""
    from huggingface_hub import constants

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/api/datasets/org/beans":
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.end_headers()
                return
            body = json.dumps({"id": "org/beans", "sha": "b" * 40, "cardData": BEANS_CARD, "siblings": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_hub_card_is_read_through_the_real_client(card_hub: str) -> None:
    d = describe_hub_dataset("org/beans", endpoint=card_hub)
    assert d.name == "org/beans" and d.label_names[-1] == "healthy"
    assert d.hub_dataset == "org/beans"  # what cards listing it as training data are matched against
    with pytest.raises(InvalidDatasetError, match="could not read the card of Hub dataset 'org/missing'"):
        describe_hub_dataset("org/missing", endpoint=card_hub)

"""hf-spider Space: describe a dataset, rank the candidate models, plot them, download or push the shortlist.

A thin UI over ``hf_spider.pipeline("model-selection")``: every rule (reading the task, filters, flagging test repos,
ordering, re-ranking, the CSV / JSON writers, the collection push) lives in the library, so the Space ranks exactly as
the CLI and the pipeline do. The Space only says, in a visitor's words, what it ranked, what the ranking read and what
went wrong. It runs offline on the bundled candidate pool. The task comes from whichever one field the user filled in
(a Hub dataset id, an uploaded file, or label names); the modality is asked for only for label names (a dataset's is
detected), and is never assumed.

Every error, the library's typed ones and the Hub's (offline, rate limit, gated, not found) alike, ends as one plain
sentence in the status area, replacing the previous status, plus a toast; the results are cleared rather than shown
as red "Error" badges. The Hub token typed into the push box is used for that one request and never stored or logged.

Each new pipeline option is one form component, one parameter of :func:`rank_task` and one key in
:func:`pipeline_options`.
"""

from __future__ import annotations

import logging
import re
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from hf_spider.errors import HfSpiderError, InvalidDatasetError, OfflineCacheMissError

logger = logging.getLogger(__name__)

#: What the user may fill in to describe the task, in the order the form shows them.
TASK_FIELDS = ("Hub dataset id", "dataset file", "label names")
MODALITIES = ("image", "text")
#: Candidate pools of the dropdown, as the pipeline's ``candidates=``: the bundled one, or the library's live Hub pool
#: (the most downloaded models of the task's modality, listing cached: :class:`hf_spider.hub.live.HubPool`).
HUB_POOL = "Hub (most downloaded, cached)"
POOLS = {"bundled": "bundled", HUB_POOL: "hub"}
#: Largest upload unpacked from a zip, so a zip bomb cannot fill the Space's disk.
MAX_UNZIPPED_BYTES = 512 * 2**20
#: Widths of the table's columns but the notes, in percent of the table's width, so that short headers stay on one
#: line; the notes get the rest and wrap (a notes column sized to its content runs past the table's right edge).
COLUMN_PERCENT = {
    "rank": 5,
    "model": 28,
    "percentile": 9,
    "score": 9,
    "params": 7,
    "license": 9,
    "downloads": 8,
    "last modified": 10,
}
#: Height in pixels the shortlist table may take before it scrolls: the default ten rows, wrapped notes included.
TABLE_MAX_HEIGHT = 900
#: Longest re-ranking the form allows, in seconds (the Space's CPU is shared, so the default is 0: off).
MAX_RERANK_SECONDS = 300
#: A task given by many label names is named by its first characters in the status.
MAX_TASK_NAME_CHARS = 60

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: The examples under the form: (Hub dataset id, file, label names, modality), and what each is called. The zip and
#: the CSV are made by ``scripts/make_space_examples.py`` (see ``examples/README.md``).
EXAMPLES = (
    ("", None, "cat, dog, bird", "image"),
    ("cornell-movie-review-data/rotten_tomatoes", None, "", None),
    ("", str(EXAMPLES_DIR / "shapes.zip"), "", None),
    ("", str(EXAMPLES_DIR / "reviews.csv"), "", None),
)
EXAMPLE_LABELS = (
    "Label names: cat, dog, bird (an image task)",
    "Hub dataset: rotten_tomatoes (film reviews)",
    "Image folder (zip): circles, squares, triangles",
    "Text file (CSV): short reviews, 3 classes",
)
FIRST_VIEW = (
    "Results appear here. Click an example above, or describe your task and press **Rank**: you get the models most "
    "likely to fine-tune well on it, each linked to its Hub page, with two plots and the list as CSV or JSON."
)

#: What the ranking read of the task, by ``shortlist.metadata["read"]`` and whether the user gave samples.
READ_SENTENCES = {
    ("label names", False): (
        "The ranking read only the label names you typed, not any data, so a task with the same classes gets the "
        "same list; for a list specific to your data, give the dataset (a Hub id or a file) and re-rank the best "
        "models with forward passes."
    ),
    ("label names", True): (
        "The ranking read the dataset's label names, not its samples, so a dataset with the same classes gets the "
        "same list; give re-ranking a time budget above 0 seconds to run the best models on your samples for a list "
        "specific to your data."
    ),
    ("samples", True): "The ranking read samples of your dataset as well as its label names.",
}


@lru_cache(maxsize=1)
def _selector() -> Any:
    """One pipeline per process: building it loads the ranker and its records."""
    from hf_spider.pipeline import pipeline

    return pipeline("model-selection")


@lru_cache(maxsize=1)
def bundled_pool_size() -> int:
    """How many models the bundled pool holds, for the header (read from the pool, so it follows the package)."""
    from hf_spider.ranking import load_candidates

    return len(load_candidates("bundled"))


def rank_task(
    dataset_id: str,
    upload: str | None,
    labels: str,
    modality: str | None,
    candidates: str,
    top_k: float,
    max_params_m: float,
    drop_flagged: bool,
    rerank_seconds: float,
    description: str = "",
    progress: gr.Progress = gr.Progress(),  # noqa: B008  (Gradio injects the tracker through this default)
) -> tuple[Any, ...]:
    """Rank one task. Returns the status, the table, its value line, the notes and their box, the two figures, the CSV
    and JSON downloads and the shortlist as JSON for the push: see :func:`shown` and :func:`cleared`."""
    progress(0.1, desc="reading the task")
    try:
        task = task_input(dataset_id, upload, labels, modality)
        progress(0.4, desc="re-ranking with forward passes" if rerank_seconds else "scoring the candidates")
        options = pipeline_options(candidates, top_k, max_params_m, drop_flagged, rerank_seconds, description)
        shortlist = _selector()(task, **options)
    except Exception as exc:  # every failure ends as a sentence in the status, never as red badges
        message = error_sentence(exc, dataset_id=(dataset_id or "").strip())
        gr.Warning(message)
        return cleared(message)
    progress(0.9, desc="plotting")
    has_samples = not isinstance(task, dict)
    said = status_text(shortlist, task_name(dataset_id, upload, labels), candidates, has_samples, bool(rerank_seconds))
    return shown(shortlist, said)


def pipeline_options(
    candidates: str,
    top_k: float,
    max_params_m: float,
    drop_flagged: bool,
    rerank_seconds: float,
    description: str = "",
) -> dict[str, Any]:
    """The form's settings as ``pipeline("model-selection")`` options (the library applies every rule). The Space
    re-ranks only when given a budget (``rerank_budget=0`` by default): forward passes on a shared CPU are the
    visitor's call."""
    options: dict[str, Any] = {
        "top_k": int(top_k),
        "candidates": POOLS.get(candidates, "bundled"),
        "rerank_budget": float(rerank_seconds or 0),
    }
    if (description or "").strip():
        options["description"] = description.strip()
    if max_params_m:
        options["max_parameters"] = int(max_params_m * 1e6)
    if drop_flagged:
        options.update(drop_unknown=True, drop_test_repos=True)
    return options


def shown(shortlist: Any, status: str) -> tuple[Any, ...]:
    """The outputs of a ranking: everything visible, the table's model ids linked to their Hub pages."""
    import pandas as pd

    header, rows = shortlist.display_rows()
    model = header.index("model")
    for row, entry in zip(rows, shortlist, strict=True):
        row[model] = f"[{_escape_markdown(row[model])}]({entry.url})"
    datatype = ["markdown" if i == model else "str" for i in range(len(header))]
    notes_percent = 100 - sum(COLUMN_PERCENT.get(name, 0) for name in header)
    widths = [f"{COLUMN_PERCENT.get(name, notes_percent)}%" for name in header]
    csv_path, json_path = _downloads(shortlist)
    header_value, notes = header[2], shortlist.notes[1:]  # notes[0] says what the value column means
    return (
        status,
        gr.update(
            value=pd.DataFrame(rows, columns=header), datatype=datatype, column_widths=widths, wrap=True, visible=True
        ),
        gr.update(value=f"**{header_value}**: {shortlist.value_label}.", visible=True),
        "\n".join(f"- {note}" for note in notes),
        gr.update(visible=bool(notes)),
        gr.update(value=shortlist.plot_scores(), visible=True),
        gr.update(value=shortlist.plot_size_vs_score(), visible=True),
        gr.update(value=csv_path, visible=True),
        gr.update(value=json_path, visible=True),
        shortlist.to_json(),
    )


def cleared(status: str) -> tuple[Any, ...]:
    """The outputs of a failed ranking: the error sentence as the status, every result hidden and emptied."""
    hidden = gr.update(value=None, visible=False)
    return status, hidden, gr.update(value="", visible=False), "", gr.update(visible=False), *[hidden] * 4, ""


def status_text(shortlist: Any, task: str, pool: str, has_samples: bool, rerank_asked: bool = False) -> str:
    """What was ranked (the task as the user gave it, how many of which pool), what the ranking read and what the
    user can do for a task-specific list, what re-ranking really did (read from the entries: which estimator ran,
    which models failed), or why it did not run when asked (the library then returns stage one with a note)."""
    meta = shortlist.metadata
    listed = sum(e.error is None for e in shortlist)
    modality = meta.get("modality", "")
    lines = [
        f"**{listed} of {meta['candidates']:,} {modality} models** in {_pool_name(pool, meta['pool_size'])}, "
        f"ranked for **{_escape_markdown(task)}**.",
    ]
    reading = READ_SENTENCES.get((meta.get("read"), has_samples), "")
    if rerank_asked and has_samples and "rerank" not in meta:
        reading = _rerank_not_run(meta.get("read", "label names"))
    elif "rerank" in meta:
        ran = sorted({name for e in shortlist for name in e.estimator_scores})
        reranked = sum(bool(e.estimator_scores) for e in shortlist)
        reading = (
            f"The ranking read the dataset's {meta.get('read', 'label names')}, then ran the best {reranked} models "
            f"on your samples (forward passes) and re-ranked them by {', '.join(ran)}: this part of the list is "
            "specific to your data."
        )
        failed = [e for e in shortlist if e.error]
        if failed:
            reading += (
                f" {len(failed)} could not be run and are listed last with the reason: "
                + ", ".join(_escape_markdown(e.model_id) for e in failed)
                + "."
            )
    return "\n\n".join(line for line in (*lines, reading) if line)


def _rerank_not_run(read: str) -> str:
    """Why a re-ranking that was asked for did not run, in a visitor's words (the library's note names commands)."""
    from huggingface_hub.constants import is_offline_mode

    why = (
        "this Space cannot reach the Hugging Face Hub to download the best models"
        if is_offline_mode()
        else "none of the best models could be run on your samples (the notes under the plots say why)"
    )
    return (
        f"You asked for a re-rank with forward passes, but {why}, so the list comes from the dataset's {read} alone, "
        "as if the re-rank budget were 0."
    )


def error_sentence(exc: BaseException, *, dataset_id: str = "") -> str:
    """One plain sentence saying what went wrong and what to do, written for a visitor of the Space.

    The Hub's typed errors (found anywhere in the chain of causes: the library wraps a dataset's) are named by what
    could not be loaded: the dataset when the library says so, else the Hub candidate pool. The library's own errors
    keep their message, made one plain sentence.
    """
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    about_dataset = isinstance(exc, InvalidDatasetError)
    subject = f"the dataset '{_escape_markdown(dataset_id)}'" if about_dataset else "the Hub candidate pool"
    fix = "upload the dataset as a file or type its label names" if about_dataset else "choose the bundled pool"
    cause = _hub_cause(exc)
    # offline with no cached listing of the Hub pool is the Hub out of reach, as a visitor sees it
    if isinstance(cause, OfflineModeIsEnabled | ConnectionError | TimeoutError) or isinstance(
        exc, OfflineCacheMissError
    ):
        return f"The Hugging Face Hub cannot be reached from this Space, so {subject} could not be loaded; {fix}."
    if isinstance(cause, GatedRepoError):
        return f"{subject[:1].upper()}{subject[1:]} is gated on the Hub and this Space has no access to it; {fix}."
    if isinstance(cause, RepositoryNotFoundError):
        return f"The Hub does not know {subject}; check the id, or {fix}."
    if isinstance(cause, HfHubHTTPError):
        status = cause.response.status_code
        if status == 429:
            return f"The Hub is rate-limiting this Space, so {subject} could not be loaded; wait a minute, or {fix}."
        return f"The Hub answered {status}, so {subject} could not be loaded; try again later, or {fix}."
    if isinstance(exc, HfSpiderError | gr.Error):
        text = exc.message if isinstance(exc, gr.Error) else str(exc)
        # the Space has no column fields: the fix a visitor can make is to the file
        text = text.replace("pass label_column= (--label-column)", "name the column of classes 'label'")
        text = text.replace("pass input_column= (--input-column)", "keep one column of texts or images")
        return _plain_sentence(text)
    logger.exception("ranking failed")
    return f"Something went wrong while ranking ({type(exc).__name__}); try again, or report it with what you entered."


def _hub_cause(exc: BaseException) -> BaseException | None:
    """The first Hub or network error in ``exc``'s chain of causes, ``None`` when there is none."""
    from huggingface_hub.errors import HfHubHTTPError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, HfHubHTTPError | ConnectionError | TimeoutError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _plain_sentence(text: str) -> str:
    """A library message as one plain sentence: one line, no markdown code marks, capitalised, with a full stop."""
    text = " ".join(text.replace("`", "").split())
    return _escape_markdown(text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else "."))


def _escape_markdown(text: str) -> str:
    """``text`` shown as written in a markdown cell or status (``nateraw/test_model_a`` stays upright), with the
    characters that would rewrite or reorder the line escaped first (a task or dataset name is the user's)."""
    from hf_spider.hub.sanitize import escape_for_display

    return re.sub(r"([\\`*_{}\[\]<>()#+!|~])", r"\\\1", escape_for_display(text))


def push_collection(shortlist_json: str, title: str, namespace: str, token: str) -> str:
    """Push the last shortlist to a collection with the user's token (kept in this call only); an error is returned
    as the push status, with a toast."""
    from hf_spider.outputs.shortlist import Shortlist

    try:
        if not shortlist_json:
            raise gr.Error("rank a task first, then push its shortlist")
        if not title.strip():
            raise gr.Error("give the collection a title")
        url = Shortlist.from_json(shortlist_json).push_to_hub_collection(
            title.strip(), namespace=namespace.strip() or None, token=token.strip() or None
        )
    except Exception as exc:
        message = error_sentence(exc)
        gr.Warning(message)
        return message
    return f"Pushed to [{url}]({url})"


def task_input(dataset_id: str, upload: str | None, labels: str, modality: str | None) -> Any:
    """The task from the one field the user filled in; a clear error when none, or more than one, is."""
    names = _label_names(labels)
    given = dict(zip(TASK_FIELDS, (bool((dataset_id or "").strip()), bool(upload), bool(names)), strict=True))
    filled = [field for field, present in given.items() if present]
    if not filled:
        raise gr.Error("describe the task: type a Hub dataset id, upload a dataset file, or type its label names")
    if len(filled) > 1:
        raise gr.Error(f"fill in only one of {', '.join(filled)}; clear the others")
    if given["Hub dataset id"]:
        return dataset_id.strip()
    if upload:
        return unpacked(Path(upload))
    if modality not in MODALITIES:
        raise gr.Error("are the label names for an image or a text task? pick the modality")
    return {"labels": names, "modality": modality, "name": task_name("", None, labels)}


def task_name(dataset_id: str, upload: str | None, labels: str) -> str:
    """The task as the user gave it: the dataset id, the uploaded file's name, or the label names."""
    name = (dataset_id or "").strip() or (Path(upload).name if upload else ", ".join(_label_names(labels)))
    return name if len(name) <= MAX_TASK_NAME_CHARS else name[: MAX_TASK_NAME_CHARS - 1] + "…"


def _label_names(labels: str) -> list[str]:
    return [n.strip() for n in (labels or "").replace("\n", ",").split(",") if n.strip()]


def unpacked(path: Path) -> str:
    """A zip is unpacked to a temporary folder (one sub-folder per class); any other file is used as it is."""
    if path.suffix.lower() != ".zip":
        return str(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise gr.Error(f"'{path.name}' is not a readable zip; upload a zip of an image folder") from exc
    with archive:
        members = archive.infolist()
        if not any(not m.is_dir() for m in members):
            raise gr.Error(f"'{path.name}' is empty; upload a zip of an image folder (one sub-folder per class)")
        if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES:
            raise gr.Error(f"'{path.name}' unpacks to more than {MAX_UNZIPPED_BYTES >> 20} MiB; upload fewer images")
        target = Path(tempfile.mkdtemp(prefix="hf_spider_upload_")) / path.stem
        for member in members:
            if Path(member.filename).is_absolute() or ".." in Path(member.filename).parts:
                raise gr.Error(f"'{path.name}' holds an unsafe path ({member.filename}); upload a plain image folder")
        archive.extractall(target)
    roots = [p for p in target.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    # one folder that holds the class folders is a wrapper; one that holds the images is the only class
    wrapper = len(roots) == 1 and roots[0].is_dir() and any(p.is_dir() for p in roots[0].iterdir())
    return str(roots[0] if wrapper else target)


def _downloads(shortlist: Any) -> tuple[str, str]:
    """The shortlist as CSV (the table shown) and JSON (everything, raw scores included), by the library's writers."""
    folder = Path(tempfile.mkdtemp(prefix="hf_spider_shortlist_"))
    csv_path, json_path = folder / "hf-spider-shortlist.csv", folder / "hf-spider-shortlist.json"
    csv_path.write_text(shortlist.to_csv(), encoding="utf-8")
    json_path.write_text(shortlist.to_json(), encoding="utf-8")
    return str(csv_path), str(json_path)


def _pool_name(choice: str, size: int) -> str:
    """The pool as the status names it, with its size (the pipeline's ``metadata["pool_size"]``)."""
    if POOLS.get(choice) == "hub":
        return f"the Hub pool of {size:,} (the Hub's most downloaded models, listing cached)"
    return f"the bundled pool of {size:,}"


def _show_for_task(dataset_id: str, upload: str | None, labels: str) -> tuple[Any, Any]:
    """The modality question only for label names; re-ranking only when there are samples to run models on."""
    has_samples = bool((dataset_id or "").strip()) or bool(upload)
    return gr.update(visible=bool((labels or "").strip())), gr.update(visible=has_samples)


def build_demo() -> gr.Blocks:
    """The Blocks app (tests launch it on 127.0.0.1; the Space runs it as ``app.py``)."""
    with gr.Blocks(title="hf-spider: which model should I fine-tune?") as demo:
        gr.Markdown(
            "# hf-spider\nRank pre-trained Hub models for your dataset without fine-tuning them all "
            f"(Model Spider, NeurIPS 2023). Works offline on the bundled pool of {bundled_pool_size():,} models.\n\n"
            "**Describe your task with one of the three fields below, or click an example.**"
        )
        with gr.Row():
            with gr.Column():
                dataset_id = gr.Textbox(
                    label="Hub dataset id",
                    placeholder="cornell-movie-review-data/rotten_tomatoes",
                    elem_id="dataset-id",
                )
                upload = gr.File(
                    label="... or a dataset file: CSV / JSON / Parquet, or a zip of an image folder (one sub-folder "
                    "per class)",
                    file_types=[".csv", ".json", ".jsonl", ".parquet", ".zip"],
                    elem_id="upload",
                )
                labels = gr.Textbox(
                    label="... or just the label names (comma-separated)",
                    placeholder="cat, dog, bird",
                    elem_id="labels",
                )
                modality = gr.Radio(
                    list(MODALITIES),
                    value=None,
                    label="Are these labels for images or for texts?",
                    visible=False,
                    elem_id="modality",
                )
                description = gr.Textbox(
                    label="Optionally, the task in words (read beside the labels or data)",
                    placeholder="sentiment of short film reviews",
                    elem_id="description",
                )
            with gr.Column():
                candidates = gr.Dropdown(
                    list(POOLS), value="bundled", label="Candidate pool (the bundled one works offline)", elem_id="pool"
                )
                top_k = gr.Slider(1, 50, value=10, step=1, label="How many models to list")
                max_params = gr.Number(value=0, label="Max parameters (millions, 0 = no limit)")
                drop_flagged = gr.Checkbox(
                    value=False,
                    label="Leave out test / random-weight repos, and models a filter cannot check (unknown size)",
                    elem_id="drop-flagged",
                )
                rerank = gr.Slider(
                    0,
                    MAX_RERANK_SECONDS,
                    value=0,
                    step=10,
                    label="Re-rank the best models with forward passes on your data: seconds to spend (0 = off)",
                    visible=False,
                    elem_id="rerank",
                )
                rank_button = gr.Button("Rank", variant="primary", elem_id="rank-button")
        examples = gr.Examples(
            [list(example) for example in EXAMPLES],
            [dataset_id, upload, labels, modality],
            example_labels=list(EXAMPLE_LABELS),
            label="Examples (click one to rank it)",
            elem_id="examples",
        )
        status = gr.Markdown(FIRST_VIEW, elem_id="status")
        table = gr.Dataframe(
            label="Shortlist",
            interactive=False,
            wrap=True,
            max_height=TABLE_MAX_HEIGHT,
            visible=False,
            elem_id="shortlist",
        )
        value_line = gr.Markdown(visible=False, elem_id="value-line")
        with gr.Row():
            csv_button = gr.DownloadButton("Download CSV", size="sm", visible=False, elem_id="download-csv")
            json_button = gr.DownloadButton("Download JSON", size="sm", visible=False, elem_id="download-json")
        with gr.Row():
            scores_plot = gr.Plot(label="Scores", visible=False, elem_id="scores-plot")
            size_plot = gr.Plot(label="Size versus score", visible=False, elem_id="size-plot")
        with gr.Accordion("Notes on this list", open=False, visible=False) as notes_box:
            notes = gr.Markdown(elem_id="notes")
        shortlist_json = gr.State("")
        with gr.Accordion("Push the shortlist to a Hub collection", open=False):
            title = gr.Textbox(label="Collection title")
            namespace = gr.Textbox(label="Namespace (default: your user)")
            token = gr.Textbox(label="Hub write token (used once, never stored)", type="password")
            push_button = gr.Button("Push to collection")
            push_status = gr.Markdown()
        task_fields = [dataset_id, upload, labels]
        for field in task_fields:
            field.change(_show_for_task, task_fields, [modality, rerank], api_name=False)
        inputs = [
            dataset_id,
            upload,
            labels,
            modality,
            candidates,
            top_k,
            max_params,
            drop_flagged,
            rerank,
            description,
        ]
        outputs = [
            status,
            table,
            value_line,
            notes,
            notes_box,
            scores_plot,
            size_plot,
            csv_button,
            json_button,
            shortlist_json,
        ]
        rank_button.click(rank_task, inputs, outputs, api_name="rank")
        # an example fills every task field at once: show what it asks for (the modality), then rank it
        shown_fields = examples.load_input_event.then(_show_for_task, task_fields, [modality, rerank], api_name=False)
        shown_fields.then(rank_task, inputs, outputs, api_name=False)
        push_button.click(push_collection, [shortlist_json, title, namespace, token], push_status, api_name="push")
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.launch()

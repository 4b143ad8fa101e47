"""`hf-spider evaluate`: the benchmark's figures on the shipped records, a team history where learning pays, and one
clear line (exit 2, nothing written) for each bad-records case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_spider.cli import main
from hf_spider.finetune_records import load_bundled_records
from hf_spider.hub.index import load_bundled_index, write_index
from hf_spider.hub.records import ModelRecord

REPO = Path(__file__).resolve().parents[1]
# Two published text targets, every model recorded on them (text: their label names encode in a blink).
SUBSET = ["rotten_tomatoes", "tweet_eval/irony"]
MODALITY = "text"


def run(capsys, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["evaluate", "--output-dir", str(tmp_path / "out"), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """stderr of a refused run: exactly one line, the error (library warnings of the environment aside)."""
    lines = [line for line in err.splitlines() if line.strip() and "Warning" not in line and "warn(" not in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("hf-spider evaluate: error: ")
    return lines[0]


def test_size_prior_figures_match_a_hand_computation_on_shipped_records(capsys, tmp_path) -> None:
    """Leave one target out, the size prior ranks a target's models by log parameter count (unknown sizes last):
    its per-target weighted tau, target weights and means recomputed here from the records with scipy alone."""
    from scipy.stats import weightedtau

    shipped = load_bundled_records()
    subset = tmp_path / "subset.csv"
    shipped.accuracy[shipped.accuracy.target.isin(SUBSET)].to_csv(subset, index=False)
    code, out, _ = run(capsys, tmp_path, "--records", str(subset), "--ranker", "size_prior", "--protocol", "loto")
    assert code == 0 and "weighted mean" in out
    rows = pd.DataFrame(json.loads((tmp_path / "out" / "evaluation.json").read_text())["rows"])
    rows = rows[(rows.protocol == "loto") & (rows.ranker == "size_prior")].set_index("target")
    assert (tmp_path / "out" / "evaluation.png").stat().st_size > 1000

    size = {m.repo_id: m.num_parameters for m in load_bundled_index()}
    taus, weights = [], []
    for target in SUBSET:
        truth = shipped.accuracy[shipped.accuracy.target == target].groupby("model").accuracy.max()
        log_size = np.array([np.log(size[m]) if size.get(m) else np.nan for m in truth.index])
        log_size[np.isnan(log_size)] = np.nanmin(log_size) - 1.0  # unknown sizes tie below every known one
        taus.append(weightedtau(truth.to_numpy(), log_size).statistic)
        weights.append(truth.max() - truth.mean())
        assert rows.loc[target, "weighted_tau"] == pytest.approx(taus[-1], abs=1e-12)
        assert rows.loc[target, "weight"] == pytest.approx(weights[-1], abs=1e-12)
    assert rows.loc["plain mean", "weighted_tau"] == pytest.approx(np.mean(taus), abs=1e-12)
    assert rows.loc["weighted mean", "weighted_tau"] == pytest.approx(np.average(taus, weights=weights), abs=1e-12)


FAMILIES = {  # model_type -> (parameter count, true accuracy level): the good family is the small one
    "distilbert": (66_000_000, 0.90),
    "bert": (110_000_000, 0.70),
    "roberta": (355_000_000, 0.65),
}
LABELS = ["complaint|praise|question", "spam|ham", "urgent|routine|ignore", "billing|delivery|quality|other", "yes|no"]


def team_history(tmp_path: Path) -> tuple[Path, Path]:
    """5 text targets x 12 models the bundled index does not know (their records in an index file, as a crawl gives
    them); on every target the distilbert family is best and the big roberta models are worst, give or take noise."""
    rng = np.random.default_rng(0)
    models = []
    for family, (size, _) in FAMILIES.items():
        for i in range(4):
            models.append(
                ModelRecord(
                    repo_id=f"team/{family}-{i}",
                    pipeline_tag="text-classification",
                    library_name="transformers",
                    model_type=family,
                    architectures=(f"{family.capitalize()}ForSequenceClassification",),
                    num_parameters=int(size * (1 + 0.1 * i)),
                )
            )
    index = write_index(models, tmp_path / "team_index.jsonl")
    rows = []
    for t, labels in enumerate(LABELS):
        for m in models:
            level = FAMILIES[m.model_type][1]
            rows.append((m.repo_id, f"team-task-{t}", level + rng.normal(0, 0.03), labels))
    records = tmp_path / "team.csv"
    pd.DataFrame(rows, columns=["model", "target", "accuracy", "labels"]).to_csv(records, index=False)
    return records, index


@pytest.mark.slow
def test_trained_rankers_beat_the_size_prior_on_a_team_history(capsys, tmp_path) -> None:
    records, index = team_history(tmp_path)
    code, out, err = run(capsys, tmp_path, "--records", str(records), "--candidates", str(index), "--protocol", "loto")
    assert code == 0, err
    assert "12 of your 12 models have no shipped record" in err
    assert out.splitlines()[-1].startswith("text: ")  # the one-line verdict
    rows = pd.DataFrame(json.loads((tmp_path / "out" / "evaluation.json").read_text())["rows"])
    means = rows[rows.target == "weighted mean"].set_index("ranker").weighted_tau
    size = means["size_prior"]
    assert size < 0  # the truth favours the smallest family: size is the wrong guide here
    for ranker in ("spider", "graph", "fennec"):
        assert means[ranker] > size + 0.5, (ranker, means.to_dict())
    assert set(rows[rows.target.str.startswith("team-task")].target) == {f"team-task-{t}" for t in range(5)}


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "records.csv"
    path.write_text(text)
    return str(path)


def shipped_rows(target: str = "rotten_tomatoes", models: int = 3, scale: float = 1.0) -> list[str]:
    accuracy = load_bundled_records().accuracy
    rows = accuracy[accuracy.target == target].head(models)
    return [f"{r.model},{r.target},{r.accuracy * scale}" for r in rows.itertuples()]


BAD_RECORDS = {
    "unknown model ids": (
        ["nobody/no-such-model,rotten_tomatoes,0.5", *shipped_rows()],
        "1 model id(s) are in no candidate record ('nobody/no-such-model'); pass candidates= (--candidates)",
    ),
    "a target with fewer than 3 models": (shipped_rows(models=2), "target 'rotten_tomatoes' has 2 model(s)"),
    "an accuracy outside 0..1 and 0..100": (
        [*shipped_rows(scale=100), "bert-base-uncased,rotten_tomatoes,130"],
        "line 5: accuracy 130 is outside 0..1 and 0..100; fix that row",
    ),
    "a negative accuracy": (
        ["a/b,rotten_tomatoes,-0.1", *shipped_rows()],
        "line 2: accuracy -0.1 is outside 0..1 and 0..100",
    ),
    "two accuracy scales": ([*shipped_rows(), *shipped_rows(target="glue/sst2", scale=100)], "mixes accuracy scales"),
    "duplicate rows": (
        [*shipped_rows(), shipped_rows()[0]],
        "1 row(s) repeat a (model, target) pair (line 5 repeats",
    ),
    "a non-numeric accuracy": ([*shipped_rows(), "a/b,rotten_tomatoes,high"], "line 5 has no numeric accuracy"),
    "an infinite accuracy": ([*shipped_rows(), "a/b,rotten_tomatoes,inf"], "line 5: accuracy inf is outside 0..1"),
    "an accuracy past float range": ([*shipped_rows(), "a/b,rotten_tomatoes,1e309"], "line 5: accuracy inf is"),
    "a NaN accuracy": ([*shipped_rows(), "a/b,rotten_tomatoes,nan"], "line 5 has no numeric accuracy"),
    "a header and no rows": ([], "records.csv has no rows; add one row per fine-tuning run"),  # was an IndexError
    "every target's runs failed": (
        [line.rsplit(",", 1)[0] + ",0.01" for line in shipped_rows(models=4)],
        "on every target most models share one accuracy ('rotten_tomatoes': 4 of its 4 models share accuracy 0.01)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_each_bad_records_case_is_one_line_and_exit_2(capsys, tmp_path, case: str) -> None:
    lines, message = BAD_RECORDS[case]
    records = write_csv(tmp_path, "\n".join(["model,target,accuracy", *lines]) + "\n")
    code, out, err = run(capsys, tmp_path, "--records", records, "--ranker", "size_prior", "--protocol", "loto")
    assert code == 2 and out == ""
    assert message in error_line(err)
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("value", ["inf", "-inf", "1e309", "high"])
@pytest.mark.parametrize("lone_file", [False, True], ids=["folder", "records.csv"])
def test_a_transfergraph_run_whose_accuracy_is_no_finite_number_names_its_line(
    capsys, tmp_path, value: str, lone_file: bool
) -> None:
    """train-scorer kept an infinite eval_accuracy as the pair's best run; evaluate named the row of the grouped
    pairs, not the file's line (a non-number failed on comparing it with the numbers)."""
    folder = tmp_path / "tg" / "image_classification"
    folder.mkdir(parents=True)
    runs = ["model,finetuned_dataset,eval_accuracy", "a/m,cifar100,0.5", "b/m,cifar100,", f"c/m,cifar100,{value}"]
    (folder / "records.csv").write_text("\n".join(runs) + "\n")  # line 3: no accuracy, a run without a result
    (folder / "transferability_score_records.csv").write_text("model,target_dataset,metric,score\n")
    records = str(folder / "records.csv" if lone_file else tmp_path / "tg")
    message = f"records.csv line 4: eval_accuracy {'inf' if value == '1e309' else value} is not a finite number"
    code, out, err = run(capsys, tmp_path, "--records", records)
    assert code == 2 and out == "" and message in error_line(err)
    if not lone_file:
        assert main(["train-scorer", "--records", records, "--output", str(tmp_path / "scorer")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "scorer").exists()


def test_a_target_whose_runs_failed_is_left_out_with_a_note(capsys, tmp_path) -> None:
    """Most models at one accuracy (runs that did not train) is no ranking: its ties would make weighted tau noise and
    its weight could outweigh the real targets, so it leaves the tables and says why."""
    failed = [line.rsplit(",", 1)[0] + ",0.01" for line in shipped_rows(target="glue/sst2", models=5)]
    failed[0] = failed[0].replace(",0.01", ",0.9")  # one run trained
    records = write_csv(tmp_path, "\n".join(["model,target,accuracy", *shipped_rows(models=6), *failed]) + "\n")
    code, _, err = run(capsys, tmp_path, "--records", records, "--ranker", "size_prior", "--protocol", "loto")
    assert code == 0, err
    assert "target 'glue/sst2': 4 of its 5 models share accuracy 0.01: left out of the tables" in err
    rows = pd.DataFrame(json.loads((tmp_path / "out" / "evaluation.json").read_text())["rows"])
    assert "glue/sst2" not in set(rows.target) and "rotten_tomatoes" in set(rows.target)


def test_missing_label_names_and_columns_are_one_line_each(capsys, tmp_path) -> None:
    rows = [f"team/m{i},my-own-task,0.{i + 5},text" for i in range(3)]
    records = write_csv(tmp_path, "\n".join(["model,target,accuracy,modality", *rows]) + "\n")
    code, _, err = run(capsys, tmp_path, "--records", records, "--allow-unknown-models", "--ranker", "size_prior")
    assert code == 2 and "no label names for target(s) 'my-own-task'" in error_line(err)
    records = write_csv(tmp_path, "model,accuracy\na/b,0.5\n")
    code, _, err = run(capsys, tmp_path, "--records", records)
    assert code == 2 and "lacks column(s) target" in error_line(err)
    code, _, err = run(capsys, tmp_path, "--records", str(tmp_path / "absent.csv"))
    assert code == 2 and "does not exist" in error_line(err)
    code, _, err = run(capsys, tmp_path, "--records", "example", "--protocol", "loto,leave-two-out")
    assert code == 2 and "unknown protocol(s) leave_two_out" in error_line(err)


NOT_FILES = {  # each used to read something else (the current folder), hang, or end in a traceback
    "records that are a device": (["--records", "/dev/null"], "records '/dev/null' is not a regular file"),
    "an empty records path": (["--records", ""], "the records path is empty; pass a CSV"),
    "an empty candidates path": (["--records", "example", "--candidates", ""], "the candidate pool path is empty"),
    "a labels file that is a device": (
        ["--records", "example", "--labels-file", "/dev/null"],
        "labels file '/dev/null' is not a regular file",
    ),
    "a labels file nested too deep": (
        ["--records", "example", "--labels-file", "{deep}"],
        "labels.json' nests too deep to be label names",
    ),
}


@pytest.mark.parametrize("case", list(NOT_FILES))
def test_records_labels_and_candidates_that_are_no_usable_file_are_one_line(capsys, tmp_path, case: str) -> None:
    argv, message = NOT_FILES[case]
    deep = tmp_path / "labels.json"
    deep.write_text('{"x":' + "[" * 100_000 + "]" * 100_000 + "}")
    code, out, err = run(capsys, tmp_path, *(a.replace("{deep}", str(deep)) for a in argv), "--ranker", "size_prior")
    assert code == 2 and out == ""
    assert message in error_line(err)
    assert not (tmp_path / "out").exists()


def test_a_labels_file_is_read_up_to_the_cap_of_a_config(tmp_path) -> None:
    """Past ``HubLimits.file_bytes`` the file is refused, not read whole (``--labels-file /dev/zero`` was killed)."""
    from hf_spider.errors import InvalidRecordsError
    from hf_spider.finetune_records import read_label_names
    from hf_spider.hub.sanitize import LIMITS

    path = tmp_path / "labels.json"
    path.write_text('{"t": ["a", "b"]}' + " " * LIMITS.file_bytes)  # valid JSON, one cap of blanks too long
    with pytest.raises(InvalidRecordsError, match="is larger than 8 MiB, too large for label names"):
        read_label_names(path)


def test_the_recoveries_keep_the_best_run_and_rank_unknown_models_from_their_id(capsys, tmp_path) -> None:
    """The two repairs the refusals name: each says what it did, in one note line."""
    best = shipped_rows()
    worse = best[0].rsplit(",", 1)[0] + ",0.01"
    rows = [worse, *best, "nobody/no-such-model,rotten_tomatoes,0.5"]
    records = write_csv(tmp_path, "\n".join(["model,target,accuracy", *rows]) + "\n")
    argv = ("--records", records, "--ranker", "size_prior", "--protocol", "loto")
    code, out, err = run(capsys, tmp_path, *argv, "--keep-best-run", "--allow-unknown-models")
    assert code == 0 and "rotten_tomatoes" in out, err
    assert "note: records.csv: kept the best run of 1 (model, target) pair(s) given more than once (1 row(s)" in err
    assert "note: 1 model(s) in no candidate record, ranked from their repo id alone: 'nobody/no-such-model'" in err
    rows = pd.DataFrame(json.loads((tmp_path / "out" / "evaluation.json").read_text())["rows"])
    assert rows[rows.target == "rotten_tomatoes"].n_models.unique().tolist() == [4]


def test_selector_evaluate_returns_the_same_table(tmp_path) -> None:
    import hf_spider
    from hf_spider.evaluation.evaluate import evaluate_records

    shipped = load_bundled_records().accuracy
    records = shipped[shipped.target.isin(SUBSET)]
    selector = hf_spider.pipeline("model-selection", ranker="size_prior")
    table = selector.evaluate(records, rankers=["size_prior"], protocols=["loto", "mixed-pool"])
    assert table.index.names == ["modality", "protocol", "ranker", "target"]
    assert table.attrs["recommendations"][0].startswith(f"{MODALITY}: ")
    pd.testing.assert_frame_equal(
        table, evaluate_records(records, rankers=["size_prior"], protocols=["loto", "mixed_pool"]).table
    )
    row = table.loc[(MODALITY, "mixed_pool", "size_prior", "weighted mean")]
    assert 0 < row.weighted_tau < 1 and abs(row.heldout_bias) < 0.01  # size is blind to what was seen


def test_reading_records_percentages_labels_column_and_side_file(tmp_path) -> None:
    from hf_spider.errors import InvalidRecordsError
    from hf_spider.finetune_records import read_label_names, read_user_records

    csv = write_csv(
        tmp_path,
        "model,target,accuracy,labels\na/x,team-task,91.5,cat|dog\na/y,team-task,80,\na/z,team-task,75.25,cat|dog\n",
    )
    records = read_user_records(csv)
    assert records.records.accuracy.accuracy.tolist() == pytest.approx([0.915, 0.80, 0.7525])
    assert records.label_names == {"team-task": ("cat", "dog")}
    assert records.notes == ("records.csv: accuracies read as percentages (0..100) and divided by 100",)
    assert read_user_records(csv, label_names={"team-task": ["a", "b", "c"]}).label_names["team-task"] == (
        "a",
        "b",
        "c",
    )

    conflicting = write_csv(tmp_path, "model,target,accuracy,labels\na/x,t,0.9,cat|dog\na/y,t,0.8,cat|cow\n")
    with pytest.raises(InvalidRecordsError, match="line 3: target 't' has a second, different list"):
        read_user_records(conflicting)
    side = tmp_path / "labels.json"
    side.write_text('{"team-task": ["ok", "broken"]}')
    assert read_label_names(side) == {"team-task": ("ok", "broken")}
    side.write_text('{"team-task": "ok|broken"}')
    with pytest.raises(InvalidRecordsError, match="must be a JSON object of target -> list of class names"):
        read_label_names(side)

"""The journal and the record made from it: what a run reported survives a record that fails validation, a file
system without room, and a killed parent; `t2vbench recover` rebuilds the record the run would have written."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from bench.core.errors import Interrupted, UsageError
from bench.records.assemble import build_record, replay
from bench.records.io import load_record
from bench.records.journal import Journal, message, read_journal
from bench.run.runner import _finish

GOLDEN = Path(__file__).parent / "data" / "record-v3-tiny-wan.json"  # a real tiny run's record


def test_journal_round_trip_and_a_cut_last_line(tmp_path):
    path = tmp_path / "j.journal.jsonl"
    journal = Journal(path)
    journal.append(message("header", **_header(load_record(GOLDEN))))
    journal.append(message("warmup", index=0, seed=-1, latency_s=0.5))
    journal.close()
    with open(path, "a") as f:
        f.write('{"kind": "generation", "index": 0, "lat')  # the write a crash interrupted
    messages = read_journal(path)
    assert [m.kind for m in messages] == ["header", "warmup"]
    assert (messages[1].index, messages[1].seed, messages[1].latency_s, messages[1].worker) == (0, -1, 0.5, 0)


def test_journal_never_overwrites_and_is_group_readable(tmp_path):
    path = tmp_path / "j.journal.jsonl"
    Journal(path).close()
    with pytest.raises(FileExistsError):
        Journal(path)


@pytest.mark.parametrize("content,fragment", [
    ('{"kind": "warmup", "index": 0, "seed": -1, "latency_s": 0.5}\n', "starts with its run's header"),
    ('HEADER\n{"kind": "nonsense"}\n', "unknown or missing 'kind'"),
    ('HEADER\nnot json\n{"kind": "done"}\n', "not valid JSON"),
    ('{"kind": "header", "journal_version": 99}\n', "journal_version 99"),
    ('HEADER\n{"kind": "warmup", "index": 0, "seed": -1, "latency_s": "0.5"}\n', ":2: field 'warmup.latency_s'"),
    ('HEADER\n{"kind": "done", "recompiles": 0, "extra": 1}\n', ":2: field 'done.extra'"),
])
def test_malformed_journals_are_refused_in_one_line(tmp_path, content, fragment):
    path = tmp_path / "j.journal.jsonl"
    path.write_text(content.replace("HEADER", message("header", **_header(load_record(GOLDEN))).line().strip()))
    with pytest.raises(UsageError, match=fragment):
        read_journal(path)


def _header(record) -> dict:
    s = record.settings
    return {"journal_version": 1, "t2vbench_version": record.t2vbench_version, "run_id": record.run_id,
            "created_utc": record.created_utc, "command": record.command, "label": record.label,
            "spec": record.spec.model_dump(), "spec_path": "", "gpus_used": 1, "parallel": None, "options": {}, "output_changing": [],
            "settings": {k: getattr(s, k) for k in ("height", "width", "num_frames", "fps", "steps",
                                                     "guidance_scale", "max_sequence_length")},
            "run": {"seed": s.seed, "prompt": s.prompt, "warmup": s.warmup, "repeats": s.repeats,
                    "time_budget_s": s.time_budget_s},
            "weights": record.weights.model_dump(), "warnings": []}


def _messages_of(record, power_w=None):
    """The messages a worker would have sent for this record (optionally with a telemetry series)."""
    msgs = [message("header", **_header(record)),
            message("device", device="cpu", dtype=record.settings.dtype, environment=record.environment,
                    hardware_class=record.hardware_class),
            message("telemetry", **{k: v for k, v in record.telemetry.model_dump().items()
                                    if k in ("backend", "available", "unavailable_reason", "device",
                                             "energy_unsupported_reason", "sample_period_s")},
                    throttle_bits={}, slowdown_reasons=[]),
            message("loaded", load_s=record.load_s, options={})]
    for g in record.generations:
        fields = g.model_dump()
        fields["peak_memory_method"] = record.peak_memory_method
        msgs.append(message("generation", **fields))
    if power_w is not None:
        msgs.append(message("series", columns={"t_s": [0.0, 1.0], "power_w": [power_w, power_w]}))
    return msgs


def test_record_from_messages_equals_the_run_record():
    record = load_record(GOLDEN)
    rebuilt = build_record(replay(_messages_of(record)), None)
    assert rebuilt.generations == record.generations and rebuilt.summary == record.summary
    assert rebuilt.complete and rebuilt.hardware_class == record.hardware_class


def test_telemetry_that_fails_validation_is_dropped_and_the_generations_kept():
    """A broken sensor reporting 10 MW: the record keeps every generation, says why telemetry is gone."""
    record = load_record(GOLDEN)
    msgs = _messages_of(record)
    msgs[2] = message("telemetry", backend="nvml", available=True, unavailable_reason=None, device={"name": "x"},
                      energy_unsupported_reason=None, sample_period_s=0.1, throttle_bits={}, slowdown_reasons=[])
    msgs.append(message("series", columns={"t_s": [0.0, 99.0], "power_w": [1e7, 1e7], "throttle_mask": [0, 0]}))
    rebuilt = build_record(replay(msgs), "interrupted by SIGINT (Ctrl-C)")
    assert len(rebuilt.generations) == len(record.generations)
    assert not rebuilt.complete and not rebuilt.telemetry.available
    assert "telemetry was dropped" in " ".join(rebuilt.warnings)


def test_no_generation_means_no_record():
    with pytest.raises(UsageError, match="no generation finished"):
        build_record(replay([message("header", **_header(load_record(GOLDEN)))]), "worker process died")


@pytest.mark.slow  # an end-to-end run: CI's slow pass runs it (the default run stays under 2 min)
def test_a_full_file_system_keeps_the_journal_and_recover_makes_the_record(tmp_path):
    """A real write failure: a file-size limit lets the small journal lines through and stops the record."""
    out = tmp_path / "out"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "tiny-wan", "--device", "cpu", "--repeats",
                           "3", "--prompt", "a cat", "--out", str(out)], capture_output=True, text=True,
                          preexec_fn=limit, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "could not write the record" in proc.stderr and "t2vbench recover" in proc.stderr
    journals = list(out.glob("*.journal.jsonl"))
    assert len(journals) == 1 and not list(out.glob("*.json"))
    recovered = subprocess.run([sys.executable, "-m", "bench.cli", "recover", str(journals[0])],
                               capture_output=True, text=True, timeout=120)
    assert recovered.returncode == 0, recovered.stderr
    record = load_record(recovered.stdout.strip().splitlines()[-1].removeprefix("record: "))
    assert record.complete and len(record.generations) == 3  # the measurement itself had finished
    assert not journals[0].exists()


def _journal(tmp_path, msgs) -> Path:
    path = tmp_path / "run-x.journal.jsonl"
    path.write_text("".join(m.line() for m in msgs))
    return path


def test_a_repeated_generation_line_is_dropped_with_a_note(run_cli, tmp_path):
    record = load_record(GOLDEN)
    msgs = _messages_of(record)
    first = next(m for m in msgs if m.kind == "generation")
    msgs += [first, first]  # index 0 twice more, as an edit of the journal would add it
    code, out, err = run_cli("recover", _journal(tmp_path, msgs))
    assert code == 0, err
    rebuilt = load_record(tmp_path / "run-x.json")
    assert [g.index for g in rebuilt.generations] == [g.index for g in record.generations]  # each kept once
    assert sum("generation 0 repeated or out of order" in w for w in rebuilt.warnings) == 2
    assert any("recovered from run-x.journal.jsonl" in w for w in rebuilt.warnings)


def test_a_second_runs_lines_spliced_in_are_refused_by_its_header(run_cli, tmp_path):
    """Another run's journal appended to this one brings its own header line: the parent writes exactly one, first.
    Read as before, the second header was passed over and both runs' generations made one record."""
    msgs = _messages_of(load_record(GOLDEN))
    other = message("header", **{**_header(load_record(GOLDEN)), "run_id": "other-run-1234"})
    msgs += [other, *msgs[1:]]
    path = _journal(tmp_path, msgs)
    code, _, err = run_cli("recover", path)
    header_line = len(_messages_of(load_record(GOLDEN))) + 1
    assert code == 2 and f"{path}:{header_line}: a second header (run_id 'other-run-1234')" in err, err
    assert err.count("\n") == 1 and not (tmp_path / "run-x.json").exists() and path.exists()


def test_generations_past_the_repeats_or_after_done_are_dropped_with_a_note(run_cli, tmp_path):
    """The worker makes generations 0 to repeats - 1 and sends nothing after 'done': the golden run asked 3; an
    edit appends generation 3 (index in order, beyond the repeats) and, after 'done', nothing more may count."""
    record = load_record(GOLDEN)
    assert record.settings.repeats == 3 and len(record.generations) == 3  # the oracle: the file as it is
    msgs = _messages_of(record)
    gens = [m for m in msgs if m.kind == "generation"]
    beyond = gens[0].model_copy(update={"index": 3, "seed": 3})
    code, _, err = run_cli("recover", _journal(tmp_path, [*msgs, beyond, message("done")]))
    assert code == 0, err
    rebuilt = load_record(tmp_path / "run-x.json")
    assert len(rebuilt.generations) == 3 and rebuilt.complete
    assert "worker 0: generation 3 beyond the 3 repeats the run asked for: dropped" in rebuilt.warnings

    # a short run's 'done' after 2 generations: a third line after it is not the run's
    early = [*msgs[:-1], message("done"), gens[2]]
    (tmp_path / "run-x.json").unlink()
    code, _, err = run_cli("recover", _journal(tmp_path, early))
    assert code == 0, err
    rebuilt = load_record(tmp_path / "run-x.json")
    assert [g.index for g in rebuilt.generations] == [0, 1] and not rebuilt.complete
    assert "worker 0: generation 2 after the worker's 'done' line: dropped" in rebuilt.warnings


def test_a_named_pipe_given_as_journal_is_said_as_one_and_never_opened(run_cli, tmp_path):
    path = tmp_path / "run-x.journal.jsonl"
    os.mkfifo(path)
    code, _, err = run_cli("recover", path)  # a blocking open of a pipe with no writer would hang here
    assert code == 2 and err.strip().endswith(f"{path}: a named pipe (FIFO), not a journal file"), err


def test_a_device_that_changes_mid_journal_is_refused_and_nothing_written(run_cli, tmp_path):
    msgs = _messages_of(load_record(GOLDEN))
    msgs.insert(4, message("device", device="cuda:0", dtype="bfloat16", environment={},
                           hardware_class="nvidia-h100-80gb-hbm3"))
    code, _, err = run_cli("recover", _journal(tmp_path, msgs))
    assert code == 2 and "reported a second device" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run-x.json").exists() and (tmp_path / "run-x.journal.jsonl").exists()


def test_an_h100_claim_edited_into_a_cpu_journal_fails_the_gates_physics(run_cli, tmp_path):
    msgs = _messages_of(load_record(GOLDEN))
    msgs[1] = message("device", device="cpu", dtype="float32", environment={"device_name": "x"},
                      hardware_class="nvidia-h100-80gb-hbm3")
    code, _, err = run_cli("recover", _journal(tmp_path, msgs))
    assert code == 2 and "does not match hardware class" in err and "nothing was written" in err, err
    assert not (tmp_path / "run-x.json").exists()


def test_a_worker_ended_by_the_users_signal_is_an_interruption_not_a_bug(tmp_path):
    """A signal that reaches a worker still importing torch ends it with a KeyboardInterrupt traceback (its 'crash'
    message); with the parent interrupted too, that is the user's stop (exit 130), not a fault of ours (exit 1)."""
    journal = Journal(tmp_path / "j.journal.jsonl")
    messages = [message("header", **_header(load_record(GOLDEN))),
                message("failed", reason="crash", message="Traceback ...\nKeyboardInterrupt")]
    with pytest.raises(Interrupted) as exc:
        _finish(messages, journal, tmp_path, "stem", "interrupted by SIGINT (Ctrl-C)", [])
    assert exc.value.exit_code == 130
    # without a signal the same crash is ours, shown as a traceback
    with pytest.raises(RuntimeError, match="worker failed before any generation finished"):
        _finish(messages, Journal(tmp_path / "k.journal.jsonl"), tmp_path, "stem", "failed", [])


@pytest.mark.parametrize("edit, fragment", [
    (lambda msgs: [msgs[0]], "no generation finished"),  # a header alone
    (lambda msgs: [m if m.kind != "generation" or m.index != 1 else m.model_copy(update={"latency_s": -1.0})
                   for m in msgs], "latency_s"),
])
def test_every_recover_refusal_names_its_journal(run_cli, tmp_path, edit, fragment):
    path = _journal(tmp_path, edit(_messages_of(load_record(GOLDEN))))
    code, _, err = run_cli("recover", path)
    assert code == 2 and err.count("\n") == 1 and str(path) in err and fragment in err, err
    assert not (tmp_path / "run-x.json").exists() and path.exists()


def test_recover_never_writes_over_a_record_and_names_no_temporary_file(run_cli, tmp_path):
    path = _journal(tmp_path, _messages_of(load_record(GOLDEN)))
    (tmp_path / "run-x.json").write_text("kept")
    code, _, err = run_cli("recover", path)
    assert code == 2 and "exists already" in err and ".tmp" not in err
    assert (tmp_path / "run-x.json").read_text() == "kept" and path.exists()


def test_a_journal_done_short_of_its_repeats_recovers_incomplete_by_the_gates_rule(run_cli, tmp_path):
    """A journal whose worker said done after 1 of its 3 repeats: recover wrote a record marked complete, which submit
    then refused as contradicting itself; now both hold one rule (ResultRecord.generations_short)."""
    record = load_record(GOLDEN)
    assert record.settings.repeats == 3 and record.settings.time_budget_s is None
    msgs = _messages_of(record)
    first = next(i for i, m in enumerate(msgs) if m.kind == "generation")
    path = _journal(tmp_path, [*msgs[:first + 1], message("done", recompiles=0)])
    code, _, err = run_cli("recover", path)
    assert code == 0, err
    rebuilt = load_record(tmp_path / "run-x.json")
    assert (rebuilt.complete, len(rebuilt.generations)) == (False, 1)
    assert rebuilt.incomplete_reason == "the run ended with 1 generation(s) where 3 were asked (3 repeats)"
    code, _, err = run_cli("submit", tmp_path / "run-x.json", "--results", tmp_path / "results", "--allow-toy")
    assert code == 2 and "incomplete (the run ended with 1 generation(s) where 3 were asked" in err, err


def test_a_journal_done_with_all_its_repeats_recovers_complete(run_cli, tmp_path):
    path = _journal(tmp_path, [*_messages_of(load_record(GOLDEN)), message("done", recompiles=0)])
    code, _, err = run_cli("recover", path)
    assert code == 0, err
    assert load_record(tmp_path / "run-x.json").complete

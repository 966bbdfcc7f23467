"""benchmarks/timings.py keeps one row per key in a Markdown table, written atomically."""

import subprocess
import sys

from benchmarks import timings


def test_record_replaces_the_row_of_its_key(tmp_path):
    path = tmp_path / "timings.md"
    timings.record("make test-fast", 61.25, 100.5, note="a | b", path=path, machine="m", commit="abc1234")
    timings.record("notebook meems (warm)", 90, path=path, machine="m", commit="abc1234-dirty")
    timings.record("make test-fast", 58, note="again", date="2026-12-01", path=path, machine="m", commit="c")
    rows = timings.read_rows(path)
    assert [r["key"] for r in rows] == ["make test-fast", "notebook meems (warm)"]
    assert rows[0] == {"key": "make test-fast", "wall s": "58", "CPU s": "", "date": "2026-12-01", "machine": "m",
                       "commit": "c", "note": "again"}
    assert rows[1]["wall s"] == "90" and rows[1]["commit"] == "abc1234-dirty"
    assert path.read_text().startswith(timings.PREAMBLE) and not list(tmp_path.glob(".*tmp"))


def test_notes_with_pipes_survive_a_round_trip(tmp_path):
    path = tmp_path / "timings.md"
    timings.record("k", 1.5, 2.0, note="x | y", path=path, machine="m", commit="c")
    assert timings.read_rows(path)[0]["note"] == "x | y" and "x \\| y" in path.read_text()


def test_defaults_describe_this_machine_and_commit(tmp_path):
    row = timings.record("k", 1, path=tmp_path / "t.md")
    assert " cores" in row["machine"] and row["date"][:2] == "20" and row["commit"]


def test_command_line_records_a_row_and_imports_no_torch(tmp_path):
    table = tmp_path / "t.md"
    argv = ["benchmarks/timings.py", "record", "make test-fast", "--wall", "12.5", "--cpu", "20", "--file", str(table)]
    done = subprocess.run([sys.executable, *argv], cwd=timings.REPO, capture_output=True, text=True, check=True)
    assert "make test-fast | 12.5 | 20" in done.stdout
    assert timings.read_rows(table)[0]["wall s"] == "12.5"
    code = "import sys; sys.path.insert(0, 'benchmarks'); import timings; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=timings.REPO, capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_committed_file_parses():
    rows = timings.read_rows()
    assert rows and all(r["key"] and float(r["wall s"]) > 0 and r["date"] for r in rows)


def test_run_records_wall_and_cpu_of_the_command_and_passes_its_exit_code(tmp_path):
    table = tmp_path / "t.md"
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.3: pass'); raise SystemExit(3)"
    argv = ["benchmarks/timings.py", "run", "burn", "--note", "n", "--file", str(table), "--", sys.executable, "-c", burn]
    done = subprocess.run([sys.executable, *argv], cwd=timings.REPO, capture_output=True, text=True)
    assert done.returncode == 3
    row = timings.read_rows(table)[0]
    assert row["key"] == "burn" and row["note"] == "n; exit 3"
    assert 0.3 <= float(row["CPU s"]) <= float(row["wall s"]) + 0.5

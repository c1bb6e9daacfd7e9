"""The pidkit command line: demo values, pid on CSV and .npy, JSON, one-line errors."""

import codecs
import json
import subprocess
import sys

import numpy as np
import pytest
from pid_reference_values import AND_CCS_RED, AND_CCS_SYN, AND_CCS_UNI, H14

from pidkit.cli import main
from pidkit.gates import gate


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _table(out, title):
    """Rows {atom label: [values...]} and the column names of the demo table of one gate."""
    block = out.split(f"\n{title}: ")[1].split("\n\n")[0].splitlines()
    columns = block[1].split()[1:]
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in block[2:]}
    return columns, rows


def test_demo_prints_literature_values(capsys):
    code, out, err = run(capsys, "demo", "--measure", "imin", "mmi", "ccs")
    assert code == 0 and err == ""
    columns, rows = _table(out, "AND")
    assert columns == ["imin", "mmi", "ccs"]
    assert rows["{0}{1}"] == pytest.approx([H14 - 0.5, H14 - 0.5, AND_CCS_RED], abs=1e-6)
    assert rows["{0}"] == pytest.approx([0, 0, AND_CCS_UNI], abs=1e-6)
    assert rows["{0:1}"] == pytest.approx([0.5, 0.5, AND_CCS_SYN], abs=1e-6)
    assert rows["I(Y;all)"] == pytest.approx([H14], abs=1e-6)
    _, rows = _table(out, "PARITY3")
    assert len(rows) == 19 and rows["{0:1:2}"] == pytest.approx([1, 1, 1], abs=1e-6)


def test_demo_default_shows_every_registered_measure(capsys):
    from pidkit.discrete import MEASURES

    code, out, _ = run(capsys, "demo", "--gate", "xor", "--base", "e")
    assert code == 0 and "in nats" in out
    columns, rows = _table(out, "XOR")
    assert columns == sorted(MEASURES)
    # every measure gives XOR's synergy ln 2, except shared exclusion: ln(4/3) (its
    # redundancy of XOR is log2(4/3) - 1 bit, negative: Makkeh et al. 2021)
    want = [np.log(4 / 3) if m == "sx" else np.log(2) for m in columns]
    assert rows["{0:1}"] == pytest.approx(want, abs=1e-6)


@pytest.fixture
def and_csv(tmp_path):
    path = tmp_path / "and.csv"
    lines = ["a,b,noise,y"] + [f"{a},{b},{(a + b) % 3},{a & b}" for a in (0, 1) for b in (0, 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pid_csv_text(capsys, and_csv):
    code, out, err = run(capsys, "pid", str(and_csv), "--target", "y", "--sources", "a", "b",
                         "--measure", "imin")
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "PID of y from (a, b), measure=imin, in bits"
    values = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()[2:-1]}
    assert values["{0}{1}"] == pytest.approx(H14 - 0.5, abs=1e-6)
    assert values["{0:1}"] == pytest.approx(0.5, abs=1e-6)


def test_pid_csv_json_and_grouping(capsys, and_csv):
    code, out, _ = run(capsys, "pid", str(and_csv), "--target", "y", "--sources", "a+b",
                       "noise", "--measure", "mmi", "--json", "--base", "2")
    assert code == 0
    d = json.loads(out)
    assert d["source_names"] == ["a+b", "noise"] and d["target_name"] == "y"
    # noise = a+b mod 3 determines y except at (0,0) vs (1,1)... compare with the library:
    import pidkit

    cols = np.array([[a, b, (a + b) % 3, a & b] for a in (0, 1) for b in (0, 1)]).T
    ref = pidkit.pid(pidkit.joint_pmf(cols[3], cols[0], cols[1], cols[2]),
                     sources=[[1, 2], [3]], measure="mmi")
    assert d["atoms"] == pytest.approx({k.replace(" ", ""): v for k, v in
                                        ref.to_dict()["atoms"].items()})
    assert d["mutual_information"] == pytest.approx(H14)


def test_pid_csv_default_target_is_first_column(capsys, tmp_path):
    path = tmp_path / "xor.csv"
    path.write_text("y,x0,x1\n0,0,0\n1,0,1\n1,1,0\n0,1,1\n")
    code, out, _ = run(capsys, "pid", str(path), "--measure", "ccs", "--json")
    assert code == 0 and json.loads(out)["synergy"] == pytest.approx(1.0)


def test_pid_npy(capsys, tmp_path):
    path = tmp_path / "and.npy"
    p = np.moveaxis(gate("AND"), 0, 2)  # target on the last axis
    np.save(path, p)
    code, out, _ = run(capsys, "pid", str(path), "--target", "2", "--measure", "ccs", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["redundancy"] == pytest.approx(AND_CCS_RED, abs=1e-9)
    assert d["unique"] == pytest.approx([AND_CCS_UNI] * 2, abs=1e-9)
    assert d["source_names"] == ["X0", "X1"]


def test_pid_npy_normalize(capsys, tmp_path):
    path = tmp_path / "counts.npy"
    np.save(path, 4 * gate("XOR"))
    code, _, err = run(capsys, "pid", str(path), "--measure", "mmi")
    assert code == 2 and "Pass --normalize" in err and "normalize=True" not in err
    assert f"{path}: sums to 4" in err
    code, out, _ = run(capsys, "pid", str(path), "--measure", "mmi", "--normalize", "--json")
    assert code == 0 and json.loads(out)["synergy"] == pytest.approx(1.0)


def test_measures_lists_registry(capsys):
    from pidkit.discrete import MEASURES

    code, out, _ = run(capsys, "measures")
    assert code == 0
    assert {"ccs", "imin", "mmi"} <= set(MEASURES)
    assert [line.split()[0] for line in out.splitlines()] == sorted(MEASURES)


def _bad_files(tmp_path):
    (tmp_path / "text.csv").write_text("y,x\n0,1\n1,a\n")
    (tmp_path / "short.csv").write_text("y,x\n0,1\n1\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "neg.csv").write_text("y,x\n0,1\n1,-1\n")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "nan.npy", np.array([[np.nan, 0.5], [0.25, 0.25]]))
    (tmp_path / "data.txt2").write_text("")


@pytest.mark.parametrize(("argv", "message"), [
    (["pid", "missing.csv"], "missing.csv: no such file"),
    (["pid", "text.csv", "--measure", "mmi"], "line 3, column 'x': 'a' is not an integer code"),
    (["pid", "short.csv", "--measure", "mmi"], "line 3 has 1 fields, the header has 2"),
    (["pid", "empty.csv"], "the file is empty"),
    (["pid", "neg.csv", "--measure", "mmi"], "line 3, column 'x' contains negative codes (-1)"),
    (["pid", "text.csv", "--target", "z"], "no column 'z'"),
    (["pid", "text.csv", "--target", "y", "--sources", "y"], "column(s) ['y'] used twice"),
    (["pid", "obj.npy"], "cannot read the array"),
    (["pid", "nan.npy", "--measure", "mmi"], "nan.npy: contains NaN or infinite probabilities"),
    (["pid", "nan.npy", "--target", "y"], "'y' is not an axis index"),
    (["pid", "data.txt2"], "unknown file type '.txt2'"),
    (["pid", "neg.csv", "--measure", "nope"], "--measure: unknown measure 'nope'"),
    (["pid", "neg.csv", "--base", "two"], "argument --base: 'two' is not a number"),
    (["pid", "neg.csv", "--base", "1"], "--base: must be a finite logarithm base"),
    (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: command"),
])
def test_errors_are_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    _bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("pidkit: error: ")
    assert message in err


def test_console_script_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("y,x\n0,0.5\n")
    proc = subprocess.run([sys.executable, "-m", "pidkit.cli", "pid", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("pidkit: error: ") and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


# --- files as users have them: Excel exports, other encodings, huge codes ---------------------
def _xor_rows():
    return [(x0 ^ x1, x0, x1) for x0 in (0, 1) for x1 in (0, 1)]


def test_utf8_byte_order_mark_is_stripped(capsys, tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark: the first column is 'y', not
    '\\ufeffy'."""
    path = tmp_path / "excel.csv"
    text = "y,x0,x1\r\n" + "".join(f"{y},{a},{b}\r\n" for y, a, b in _xor_rows())
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    code, out, err = run(capsys, "pid", str(path), "--target", "y", "--measure", "mmi", "--json")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["target_name"] == "y" and d["source_names"] == ["x0", "x1"]
    assert d["synergy"] == pytest.approx(1.0)
    code, out, _ = run(capsys, "pid", str(path), "--measure", "mmi", "--json")  # default target
    assert code == 0 and json.loads(out)["target_name"] == "y"


def test_non_utf8_file_names_the_line_and_the_encoding_to_use(capsys, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("y,température\n0,0\n1,1\n".encode("latin-1"))
    code, out, err = run(capsys, "pid", str(path), "--measure", "mmi")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "line 1 is not valid UTF-8 (byte 0xe9 at position 7)" in err
    assert "--encoding latin-1" in err and "CSV UTF-8" in err
    code, out, err = run(capsys, "pid", str(path), "--measure", "mmi", "--encoding", "latin-1",
                         "--json")
    assert code == 0 and json.loads(out)["source_names"] == ["température"]


def test_utf16_and_workbook_files_are_recognised(capsys, tmp_path):
    utf16 = tmp_path / "unicode.csv"
    utf16.write_text("y,x\n0,0\n1,1\n", encoding="utf-16")
    code, _, err = run(capsys, "pid", str(utf16), "--measure", "mmi")
    assert code == 2 and "the file is UTF-16" in err and "--encoding utf-16" in err
    code, out, _ = run(capsys, "pid", str(utf16), "--measure", "mmi", "--encoding", "utf-16",
                       "--json")
    assert code == 0 and json.loads(out)["mutual_information"] == pytest.approx(1.0)
    book = tmp_path / "book.csv"
    book.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U")
    code, _, err = run(capsys, "pid", str(book))
    assert code == 2 and "spreadsheet workbook (.xlsx)" in err
    code, _, err = run(capsys, "pid", str(utf16), "--encoding", "klingon")
    assert code == 2 and "--encoding: unknown encoding 'klingon'" in err


def test_integers_beyond_int64_name_the_column(capsys, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("y,x\n0,1\n1,99999999999999999999\n")
    code, out, err = run(capsys, "pid", str(path), "--measure", "mmi")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "line 3, column 'x': 99999999999999999999 is too large for a code" in err
    path.write_text("y,x\n0,1\n1," + "9" * 5000 + "\n")   # beyond Python's int() digit limit
    code, _, err = run(capsys, "pid", str(path), "--measure", "mmi")
    assert code == 2 and "line 3, column 'x': 99999" in err and "too large" in err


def test_large_codes_within_int64_are_labels(capsys, tmp_path):
    """Codes are labels: 10**12 and 2**62 need no table of that size, and the PID is the one of
    the compact codes (unobserved codes carry no probability)."""
    big = tmp_path / "big.csv"
    small = tmp_path / "small.csv"
    rows = _xor_rows()
    big.write_text("y,x0,x1\n" + "".join(f"{y * 2**62},{10**12 + a},{7 * b}\n"
                                         for y, a, b in rows))
    small.write_text("y,x0,x1\n" + "".join(f"{y},{a},{b}\n" for y, a, b in rows))
    _, out_big, _ = run(capsys, "pid", str(big), "--measure", "ccs", "--json")
    _, out_small, _ = run(capsys, "pid", str(small), "--measure", "ccs", "--json")
    assert json.loads(out_big)["atoms"] == pytest.approx(json.loads(out_small)["atoms"])


def test_errors_name_csv_columns_not_internal_arguments(capsys, tmp_path):
    path = tmp_path / "three.csv"
    path.write_text("y,a,b,c\n" + "".join(f"{i % 2},{i % 3},{i % 5},{i % 7}\n"
                                           for i in range(30)))
    code, _, err = run(capsys, "pid", str(path), "--measure", "proj")   # two sources only
    assert code == 2 and "columns[" not in err and "sources=[[" not in err
    assert "--sources: measure 'proj' takes at most 2 sources, got 3 (columns)" in err
    assert "a+b" in err
    code, out, _ = run(capsys, "pid", str(path), "--measure", "proj", "--sources", "a+b", "c",
                       "--json")
    assert code == 0 and json.loads(out)["source_names"] == ["a+b", "c"]
    code, out, _ = run(capsys, "pid", str(path), "--json")   # broja takes three sources
    assert code == 0 and len(json.loads(out)["atoms"]) == 18
    wide = tmp_path / "wide.csv"
    wide.write_text("y,a,b,c\n" + "".join(f"{i % 2},{i},{i},{i}\n" for i in range(500)))
    code, _, err = run(capsys, "pid", str(wide), "--measure", "mmi")
    assert code == 2 and "columns[" not in err
    assert "'y' (2), 'a' (500), 'b' (500), 'c' (500)" in err and "2.5e+08 cells" in err
    empty = tmp_path / "missing.csv"
    empty.write_text("y,x\n0,1\n1,\n")
    code, _, err = run(capsys, "pid", str(empty), "--measure", "mmi")
    assert code == 2 and "line 3, column 'x' is empty" in err


def test_npy_errors_name_options_and_the_file(capsys, tmp_path):
    path = tmp_path / "parity.npy"
    np.save(path, gate("PARITY3"))
    code, _, err = run(capsys, "pid", str(path), "--measure", "dep")
    assert code == 2 and "--sources: measure 'dep' takes at most 2 sources, got 3 (axes)" in err
    code, _, err = run(capsys, "pid", str(path), "--target", "7", "--measure", "mmi")
    assert code == 2 and "--target: axis 7 is out of range" in err
    code, _, err = run(capsys, "pid", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_semicolon_separated_csv(capsys, tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("y;x0;x1\n" + "".join(f"{y};{a};{b}\n" for y, a, b in _xor_rows()))
    code, _, err = run(capsys, "pid", str(path), "--target", "y")
    assert code == 2 and "Pass --delimiter ';'" in err
    code, out, _ = run(capsys, "pid", str(path), "--target", "y", "--delimiter", ";",
                       "--measure", "mmi", "--json")
    assert code == 0 and json.loads(out)["synergy"] == pytest.approx(1.0)


def test_console_script_non_utf8_and_huge_integer_have_no_traceback(tmp_path):
    for name, data in [("latin.csv", "y,x\n0,é\n".encode("latin-1")),
                       ("huge.csv", b"y,x\n0,1\n1,123456789012345678901234567890\n")]:
        path = tmp_path / name
        path.write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "pidkit.cli", "pid", str(path)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stdout == "", name
        assert proc.stderr.startswith("pidkit: error: ") and "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1


def test_demo_refuses_a_gate_no_chosen_measure_is_defined_on(capsys):
    # printed blank columns and "I(Y;all) nan" with exit status 0
    assert main(["demo", "--gate", "PARITY3", "--measure", "proj"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "gate PARITY3 has 3 sources (proj at most 2)" in captured.err


@pytest.mark.parametrize(("cell", "header"), [("1_0", "a,b,y"), ("\u0661", "a,b,y"),
                                              ("1", "a,,y")])
def test_csv_codes_are_ascii_integers_and_columns_have_names(tmp_path, capsys, cell, header):
    # int() reads '1_0' as 10 and the Arabic-Indic digit one as 1; an empty name was printed
    # as a column "" in the result
    path = tmp_path / "data.csv"
    path.write_text(f"{header}\n0,1,{cell}\n1,0,1\n", encoding="utf-8")
    assert main(["pid", str(path)]) == 2
    err = capsys.readouterr().err
    assert ("is not an integer code" in err if "," in header.replace(",,", "")
            else "the header has an empty column name" in err)


@pytest.mark.parametrize("encoding", ["rot13", "base64", "zlib"])
def test_byte_codecs_are_not_text_encodings(tmp_path, capsys, encoding):
    path = tmp_path / "data.csv"
    path.write_text("a,b,y\n0,1,1\n1,0,1\n", encoding="utf-8")
    assert main(["pid", str(path), "--encoding", encoding]) == 2
    assert f"--encoding: '{encoding}' is not a text encoding" in capsys.readouterr().err


def test_npy_larger_than_a_table_is_refused_before_loading(tmp_path, capsys):
    path = tmp_path / "big.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(10**8 + 1,))
    assert main(["pid", str(path)]) == 2
    assert "holds 1e+08 values" in capsys.readouterr().err


def test_target_errors_name_the_target(tmp_path, capsys):
    csv_path = tmp_path / "data.csv"
    csv_path.write_text("a,b,y\n0,1,1\n1,0,1\n", encoding="utf-8")
    assert main(["pid", str(csv_path), "--target", ""]) == 2
    assert "--target: empty name" in capsys.readouterr().err
    npy = tmp_path / "p.npy"
    np.save(npy, np.full((2, 2, 2), 0.125))
    assert main(["pid", str(npy), "--target", "-1"]) == 2     # too large says [0, ndim)
    assert "no negative indices" in capsys.readouterr().err


def test_label_columns_are_read_as_labels(capsys, tmp_path):
    """'y,x\\ncat,0\\ndog,1' was refused ("'cat' is not an integer code") although the library
    reads labels: a column with no number in it holds labels, numbered in sorted order as
    joint_pmf numbers them, and gives the PID of the same integer codes; numeric columns stay
    numeric (whole-number decimals such as 1.0 are codes, as the library reads them)."""
    rows = _xor_rows()
    names = np.array(["cat", "dog"])
    labelled = tmp_path / "labels.csv"
    labelled.write_text("y,x0,x1\n" + "".join(f"{names[y]},{a}.0,{['no', 'yes'][b]}\n"
                                              for y, a, b in rows))
    codes = tmp_path / "codes.csv"
    codes.write_text("y,x0,x1\n" + "".join(f"{y},{a},{b}\n" for y, a, b in rows))
    code, out_labels, err = run(capsys, "pid", str(labelled), "--measure", "ccs", "--json")
    assert code == 0 and err == ""
    _, out_codes, _ = run(capsys, "pid", str(codes), "--measure", "ccs", "--json")
    assert json.loads(out_labels)["atoms"] == json.loads(out_codes)["atoms"]
    # the brief's two-sample file, and a shuffled naming (sorted order does not matter)
    small = tmp_path / "small.csv"
    small.write_text("y,x\ncat,0\ndog,1\n")
    code, out, _ = run(capsys, "pid", str(small), "--measure", "mmi", "--json")
    assert code == 0 and json.loads(out)["mutual_information"] == pytest.approx(1.0)


@pytest.mark.parametrize(("cells", "message"), [
    (["cat", "1"], "line 2, column 'x': 'cat' is not an integer code, but line 3 holds the "
                   "number '1': a column holds integer codes (0, 1, 2, ...) or labels"),
    (["0", "NA"], "line 3, column 'x': 'NA' marks a missing value, but line 2 holds the number"),
    (["0", "0.5"], "line 3, column 'x': '0.5' is not an integer code"),
    (["0", "-1.0"], "line 3, column 'x' contains negative codes (-1)"),
    (["0", "1e20"], "line 3, column 'x': 100000000000000000000 is too large for a code"),
    (["0", "1e400"], "line 3, column 'x': 1e400 is too large for a code"),
])
def test_columns_mixing_numbers_and_words_and_bad_numbers_are_errors(capsys, tmp_path, cells,
                                                                      message):
    path = tmp_path / "mixed.csv"
    path.write_text("y,x\n0," + cells[0] + "\n1," + cells[1] + "\n")
    code, out, err = run(capsys, "pid", str(path), "--measure", "mmi")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize("flag, value", [("--encoding", "latin-1"), ("--delimiter", ";"),
                                         ("--encoding", "utf-8")])
def test_pid_npy_refuses_csv_only_flags(capsys, tmp_path, flag, value):
    path = tmp_path / "and.npy"
    np.save(path, gate("AND"))
    code, out, err = run(capsys, "pid", str(path), "--measure", "mmi", flag, value)
    assert code == 2 and out == ""
    assert err.startswith(f"pidkit: error: {flag}: applies to a text file") and ".npy" in err
    assert err.count("\n") == 1

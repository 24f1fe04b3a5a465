"""Reading every table format the loader promises, and atomic writes."""

import gzip
import os

import pandas as pd
import pytest

from core.errors import DataError
from features.io import has_header, normalise_sep, read_table, sniff_separator, write_table


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a;b;c\n1;2;3,5\n", ";"),
        ("a|b\n1|2\n", "|"),
        (" customer_id  date dollar_value\n 00001 19970101   11.77\n", r"\s+"),
    ],
)
def test_separator_is_sniffed(text, expected):
    assert sniff_separator([line for line in text.splitlines() if line]) == expected


def test_separator_aliases_from_a_command_line():
    assert normalise_sep("\\t") == "\t"
    assert normalise_sep("tab") == "\t"
    assert normalise_sep("whitespace") == r"\s+"
    assert normalise_sep(r"\s+") == r"\s+"
    assert normalise_sep(";") == ";"


def test_header_is_detected_from_the_first_row():
    assert has_header("customer_id,date,amount", ",")
    assert not has_header(" 00004 0001 19970101  2   29.33", r"\s+")
    assert not has_header("17850,2010-12-01 08:26:00,15.30", ",")


def test_text_is_read_as_strings_and_a_headerless_file_gets_numbered_columns(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text(" 00004 0001 19970101  2   29.33\n 00004 0001 19970118  2   29.73\n")
    frame = read_table(path)
    assert list(frame.columns) == ["0", "1", "2", "3", "4"]
    assert frame.loc[0, "0"] == "00004"  # leading zeros kept


def test_compressed_csv_and_json_lines(tmp_path):
    gz = tmp_path / "log.csv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write("id,amount\n007,1.5\n")
    assert read_table(gz).loc[0, "id"] == "007"
    jsonl = tmp_path / "log.jsonl"
    jsonl.write_text('{"id": "a", "amount": 2}\n{"id": "b", "amount": 3}\n')
    assert read_table(jsonl)["id"].tolist() == ["a", "b"]


def test_unreadable_inputs_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(empty)
    garbage = tmp_path / "broken.parquet"
    garbage.write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match="cannot read"):
        read_table(garbage)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(DataError, match="directory"):
        read_table(folder)


def test_writes_by_extension_leave_no_temporary_file(tmp_path):
    frame = pd.DataFrame({"x": [1.0, 2.5]}, index=pd.Index(["a", "b"], name="customer_id"))
    write_table(frame, tmp_path / "out" / "f.parquet", index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "f.parquet"), frame, check_index_type=False)
    write_table(frame, tmp_path / "f.csv.gz", index=True)
    with gzip.open(tmp_path / "f.csv.gz", "rt") as handle:
        assert handle.readline().strip() == "customer_id,x"
    write_table(frame, tmp_path / "f.tsv")
    assert (tmp_path / "f.tsv").read_text().splitlines() == ["x", "1.0", "2.5"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "f.tsv").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    with pytest.raises(DataError, match="file name"):
        write_table(frame, tmp_path / "f.xlsx")
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("old\n")

    class Exploding(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_table(Exploding({"x": [1]}), path)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["f.csv"]

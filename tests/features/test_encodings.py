"""Text encodings and damaged compressed files: never a silently corrupted read, always one clear error."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import random
import re
import zipfile

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.errors import DataError
from features.io import read_table, undecodable_offset
from patron.cli import app
from patron.settings import Settings

runner = CliRunner()

# The reproduction of issue 15 item 2: three customers whose names differ only in a latin-1 byte.
MUELLER = b"customer_id,timestamp,amount\nM\xe4ller,2020-01-05,10\nM\xfcller,2020-02-05,20\nM\xf6ller,2020-03-05,30\n"


@pytest.fixture
def latin1_log(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(MUELLER)
    return path


def test_undecodable_bytes_are_an_error_naming_offset_and_option(latin1_log):
    with pytest.raises(DataError) as caught:
        read_table(latin1_log)
    message = str(caught.value)
    assert "byte 30 " in message and "line 2" in message and "0xe4" in message
    assert "--encoding" in message and "PATRON_ENCODING" in message
    assert "\n" not in message


def test_the_given_encoding_keeps_the_three_customers_apart(latin1_log):
    frame = read_table(latin1_log, encoding="latin-1")
    assert frame["customer_id"].tolist() == ["M\u00e4ller", "M\u00fcller", "M\u00f6ller"]


def test_a_byte_order_mark_chooses_the_encoding(tmp_path):
    text = "customer_id,timestamp,amount\nM\u00fcller,2020-01-05,10\n"
    for name, data in (("u8.csv", codecs.BOM_UTF8 + text.encode()), ("u16.csv", text.encode("utf-16"))):
        (tmp_path / name).write_bytes(data)
        frame = read_table(tmp_path / name)
        assert list(frame.columns) == ["customer_id", "timestamp", "amount"]
        assert frame.loc[0, "customer_id"] == "M\u00fcller"


def test_an_unknown_encoding_is_a_data_error(latin1_log):
    with pytest.raises(DataError, match="unknown encoding 'klingon'"):
        read_table(latin1_log, encoding="klingon")


def test_the_offset_is_exact_past_the_first_block_and_in_compressed_files(tmp_path):
    # A valid two-byte character straddles the 1 MiB block boundary; the bad byte comes after it.
    head = b"a" * ((1 << 20) - 1) + "\u00e9".encode() + b"\nxy"
    bad_at = len(head)
    data = head + b"\xff\n"
    plain = tmp_path / "big.csv"
    plain.write_bytes(data)
    assert undecodable_offset(plain, None, "utf-8") == (bad_at, 2, b"\xff")
    packed = tmp_path / "big.csv.gz"
    packed.write_bytes(gzip.compress(data))
    assert undecodable_offset(packed, "gzip", "utf-8") == (bad_at, 2, b"\xff")
    assert undecodable_offset(plain, None, "latin-1") is None


@pytest.fixture(scope="module")
def csv_bytes() -> bytes:
    rng = random.Random(7)  # incompressible enough that half the compressed file is half the data
    rows = (f"c{rng.randrange(10**6)},2020-01-{rng.randrange(1, 28):02d},{rng.randrange(100)}\n" for _ in range(20_000))
    return ("customer_id,timestamp,amount\n" + "".join(rows)).encode()


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("log.csv", data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("suffix", "compress", "message"),
    [
        (".gz", gzip.compress, "gzip compressed stream ends early"),
        (".bz2", bz2.compress, "bz2 compressed stream ends early"),
        (".xz", lzma.compress, "xz compressed stream ends early"),
        (".zip", _zip, "not a valid zip file"),
    ],
)
def test_a_truncated_compressed_file_names_the_file_and_the_damage(tmp_path, csv_bytes, suffix, compress, message):
    whole = compress(csv_bytes)
    path = tmp_path / f"log.csv{suffix}"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_a_file_that_is_not_compressed_at_all(tmp_path):
    path = tmp_path / "log.csv.gz"
    path.write_bytes(b"customer_id,timestamp,amount\n1,2020-01-01,3\n")
    with pytest.raises(DataError, match="not a valid gzip file"):
        read_table(path)


def test_cli_truncated_gzip_is_one_line_not_aborted(tmp_path, csv_bytes):
    whole = gzip.compress(csv_bytes)
    path = tmp_path / "log.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    result = runner.invoke(app, ["features", "--transactions", str(path), "--as-of", "2020-06-30", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 1
    assert "Aborted" not in result.output
    assert f"error: cannot read {path}: gzip compressed stream ends early" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["features", "train"])
def test_cli_refuses_undecodable_input_and_reads_it_with_encoding(tmp_path, latin1_log, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATRON_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    args = [command, "--transactions", str(latin1_log)]
    if command == "features":
        args += ["--as-of", "2020-06-30", "--out", str(tmp_path / "m.parquet")]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "not valid utf-8 at byte 30" in refused.output and "--encoding" in refused.output
    assert "Traceback" not in refused.output
    read = runner.invoke(app, [*args, "--encoding", "latin-1"])
    assert re.search(r"^customers\s+3$", read.output, re.MULTILINE), read.output  # three customers, not one
    if command == "features":
        assert read.exit_code == 0
        assert sorted(pd.read_parquet(tmp_path / "m.parquet").index) == ["M\u00e4ller", "M\u00f6ller", "M\u00fcller"]


def test_the_encoding_setting_is_the_default_of_the_option(tmp_path, latin1_log, monkeypatch):
    monkeypatch.setenv("PATRON_ENCODING", "latin-1")
    monkeypatch.setattr("patron.cli.get_settings", lambda: Settings())  # fresh, not the cached one
    result = runner.invoke(
        app, ["features", "--transactions", str(latin1_log), "--as-of", "2020-06-30", "--out", str(tmp_path / "m.parquet")]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "m.parquet")) == 3

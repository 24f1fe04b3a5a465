"""Every file read and write of Patron's data: tables in (CSV, TSV, whitespace, Parquet, JSON, ...) and out.

Text tables are read as strings, so ids keep their leading zeros and the rejects show what the file
said; the separator is sniffed and a header row detected when not given. Text is decoded strictly
(UTF-8 unless told, a byte-order mark honoured): a byte the encoding cannot decode is an error naming
its offset, never a replacement character that would merge `M\xe4ller` and `M\xfcller`. Writes go to a temporary
file in the target folder and are renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import lzma
import os
import re
import tempfile
import zipfile
import zlib
from pathlib import Path

import pandas as pd

from core.errors import DataError

WHITESPACE = r"\s+"
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
_TEXT_SUFFIXES = {".csv", ".txt", ".tsv", ".tab", ".dat", ".psv", ".log", ""}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_SEP_ALIASES = {"\\t": "\t", "tab": "\t", "whitespace": WHITESPACE, "space": " ", "comma": ",", "semicolon": ";", "pipe": "|"}
# A first row made only of numbers, dates and times is data, not a header.
_DATA_FIELD = re.compile(r"^[+-]?[0-9][0-9.,:/ T+-]*$|^$")


def _suffixes(path: Path) -> tuple[str, str | None]:
    """(format suffix, compression) of a file name: `a.csv.gz` -> ('.csv', 'gzip')."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        compression = _COMPRESSIONS[suffixes.pop()]
    return (suffixes[-1] if suffixes else ""), compression


DEFAULT_ENCODING = "utf-8"
ENCODING_HINT = "set the file's encoding with --encoding or PATRON_ENCODING (e.g. latin-1, cp1252)"
_OPENERS = {None: open, "gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
# What a damaged compressed file raises, by library; EOFError is a stream cut short.
_CORRUPT_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, zipfile.BadZipFile)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _open_binary(path: Path, compression: str | None) -> io.BufferedIOBase | None:
    """The decompressed bytes of a text file, or None for a compression read only by pandas."""
    opener = _OPENERS.get(compression)
    return opener(path, "rb") if opener is not None else None  # type: ignore[operator]


def resolve_encoding(path: Path, compression: str | None, encoding: str | None) -> str:
    """The codec to decode `path` with: `encoding` when given, else the byte-order mark's, else UTF-8."""
    if encoding:
        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise DataError(f"unknown encoding {encoding!r}; {ENCODING_HINT}") from None
    handle = _open_binary(path, compression)
    if handle is None:
        return DEFAULT_ENCODING
    with handle:
        start = handle.read(4)
    return next((name for bom, name in _BOMS if start.startswith(bom)), DEFAULT_ENCODING)


def undecodable_offset(path: Path, compression: str | None, encoding: str) -> tuple[int, int, bytes] | None:
    """(byte offset, line number, bytes) of the first byte `encoding` cannot decode, or None.

    Offsets count bytes of the decompressed text. Read in 1 MiB blocks through an incremental decoder,
    so memory stays flat; run only after a read failed, to say where.
    """
    handle = _open_binary(path, compression)
    if handle is None:
        return None
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = lines = 0
    with handle:
        while True:
            block = handle.read(1 << 20)
            pending = decoder.getstate()[0]  # bytes of a character split across blocks
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                # exc.object is the pending bytes followed by this block.
                return (
                    offset - len(pending) + exc.start,
                    lines + exc.object[len(pending) : exc.start].count(b"\n") + 1,
                    exc.object[exc.start : exc.end],
                )
            if not block:
                return None
            lines += block.count(b"\n")
            offset += len(block)


def _decode_error(path: Path, compression: str | None, encoding: str) -> DataError:
    """The one-line error for a file `encoding` cannot decode, naming where and what to set."""
    found = undecodable_offset(path, compression, encoding)
    where = f" at byte {found[0]} (line {found[1]}, byte 0x{found[2][:1].hex()})" if found else ""
    return DataError(f"cannot read {path}: not valid {encoding}{where}; {ENCODING_HINT}")


def _corrupt_error(path: Path, compression: str | None, exc: BaseException) -> DataError:
    """The one-line error for a damaged or truncated compressed file."""
    kind = compression or "compressed"
    if isinstance(exc, EOFError):
        return DataError(f"cannot read {path}: {kind} compressed stream ends early (the file is truncated)")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"cannot read {path}: not a valid {kind} file ({reason})")


def _first_lines(path: Path, compression: str | None, encoding: str, count: int = 20) -> list[str]:
    """The first non-empty lines of a (possibly compressed) text file."""
    handle = _open_binary(path, compression)
    if handle is None:
        return []
    with handle, io.TextIOWrapper(handle, encoding=encoding, errors="strict", newline="") as text:
        lines = [text.readline() for _ in range(count)]
    return [line.rstrip("\r\n") for line in lines if line.strip()]


def normalise_sep(sep: str | None) -> str | None:
    """A separator as typed on a command line (`\\t`, `tab`, `\\s+`, `whitespace`) as pandas wants it."""
    if sep is None:
        return None
    return _SEP_ALIASES.get(sep.strip().lower() if sep.strip() else sep, sep)


def sniff_separator(lines: list[str]) -> str:
    """Guess the field separator from a file's first lines: `,` `\\t` `;` `|`, else whitespace."""
    for delimiter in ",\t;|":
        counts = {line.count(delimiter) for line in lines}
        if len(counts) == 1 and counts != {0}:
            return delimiter
    if not any(d in line for line in lines for d in ",\t;|"):
        return WHITESPACE
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    return delimiter


def has_header(first_line: str, sep: str) -> bool:
    """True unless every field of the first line is a number, date or time (then it is data)."""
    fields = first_line.split() if sep == WHITESPACE else next(csv.reader(io.StringIO(first_line), delimiter=sep))
    return not all(_DATA_FIELD.match(field.strip().strip('"')) for field in fields)


def read_table(
    path: str | os.PathLike[str], sep: str | None = None, header: bool | None = None, encoding: str | None = None
) -> pd.DataFrame:
    """Read a table of raw values; text formats are read as strings.

    Formats by extension: Parquet (`.parquet`, `.pq`, or a folder of them), JSON (`.json`,
    `.jsonl`, `.ndjson`), Feather/Arrow, Excel, and delimited text (`.csv`, `.tsv`, `.txt`, ...,
    optionally `.gz`/`.bz2`/`.xz`/`.zst`/`.zip`); other extensions are handed to DuckDB. A text file
    without a header row (`header=False`, or detected) gets columns named `0`, `1`, ...
    `encoding` decodes text and JSON (None: a byte-order mark's, else UTF-8), strictly: an
    undecodable byte is a DataError naming its offset. A damaged compressed file is a DataError
    saying so ("compressed stream ends early" for a truncated one).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"no such file: {path}")
    suffix, compression = _suffixes(path)
    if path.is_dir():
        if not any(path.glob("*.parquet")):
            raise DataError(f"{path} is a directory without .parquet files; give a table file")
        suffix = ".parquet"
    text_encoding = DEFAULT_ENCODING
    try:
        if suffix in _PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        if suffix in {".json", ".jsonl", ".ndjson"}:
            text_encoding = resolve_encoding(path, compression, encoding)
            return pd.read_json(
                path, lines=suffix != ".json", dtype=False, compression=compression, encoding=text_encoding
            )
        if suffix in {".feather", ".arrow", ".ipc"}:
            return pd.read_feather(path)
        if suffix in {".xlsx", ".xls"}:
            return pd.read_excel(path, dtype=str)
        if suffix in _TEXT_SUFFIXES:
            text_encoding = resolve_encoding(path, compression, encoding)
            return _read_text(path, compression, normalise_sep(sep), header, text_encoding, tab=suffix in {".tsv", ".tab"})
        return _read_with_duckdb(path)
    except DataError:
        raise
    except UnicodeDecodeError:
        raise _decode_error(path, compression, text_encoding) from None
    except _CORRUPT_ERRORS as exc:
        raise _corrupt_error(path, compression, exc) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read {path}: {reason}") from None


def _read_text(
    path: Path, compression: str | None, sep: str | None, header: bool | None, encoding: str, tab: bool
) -> pd.DataFrame:
    """A delimited text file as strings (separator sniffed and header detected when not given)."""
    lines = _first_lines(path, compression, encoding)
    if compression in (None, "gzip", "bz2", "xz") and not lines:
        raise DataError(f"{path} is empty")
    if sep is None:
        sep = "\t" if tab else (sniff_separator(lines) if lines else ",")
    if header is None:
        header = has_header(lines[0], sep) if lines else True
    whitespace = sep == WHITESPACE
    frame = pd.read_csv(
        path,
        sep=sep,
        header=0 if header else None,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        compression=compression,
        engine="c" if whitespace or len(sep) == 1 else "python",
        skipinitialspace=not whitespace,
        encoding=encoding,
        encoding_errors="strict",
    )
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_with_duckdb(path: Path) -> pd.DataFrame:
    """Read any other format DuckDB detects (text columns stay text)."""
    import duckdb

    escaped = str(path).replace("'", "''")
    try:
        return duckdb.sql(f"SELECT * FROM '{escaped}'").df()
    except duckdb.Error as exc:
        raise DataError(f"cannot read {path}: not a format Patron or DuckDB knows ({exc.__class__.__name__})") from None


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str], index: bool = False) -> Path:
    """Write CSV, TSV or Parquet (by extension, `.csv.gz` compressed) atomically: temp file, then rename."""
    path = Path(path)
    suffix, compression = _suffixes(path)
    if suffix not in {".csv", ".tsv", *_PARQUET_SUFFIXES} or (compression and suffix in _PARQUET_SUFFIXES):
        raise DataError(f"cannot write {path}: use a .csv, .csv.gz, .tsv or .parquet file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        if suffix in _PARQUET_SUFFIXES:
            frame.to_parquet(tmp_name, index=index, compression="zstd")
        else:
            frame.to_csv(tmp_name, index=index, sep="\t" if suffix == ".tsv" else ",", compression=compression)
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's file mode creation mask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def rejects_path_for(out_path: str | os.PathLike[str]) -> Path:
    """Where the rejected rows of a run writing `out_path` go: beside it, `<name>.rejects.csv`.

    The name is the output's without its format and compression suffixes, and only those:
    `scores.parquet` -> `scores.rejects.csv`, `a.v2.parquet` -> `a.v2.rejects.csv`,
    `features.csv.gz` -> `features.rejects.csv`; a directory output `scores/` -> `scores.rejects.csv`.
    """
    path = Path(out_path)
    name = path.name
    for _ in range(2):  # a compression suffix, then a format suffix
        stem, dot, suffix = name.rpartition(".")
        if dot and stem and (f".{suffix}" in _COMPRESSIONS or suffix in ("csv", "tsv", "txt", "parquet", "pq", "json", "jsonl")):
            name = stem
    return path.with_name(f"{name}.rejects.csv")

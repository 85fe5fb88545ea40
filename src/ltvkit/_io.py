"""File output written beside the target and moved into place; progress bars."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .errors import ConfigError

TABLE_SUFFIXES = (".csv", ".parquet")


def progress(iterable: Iterable, desc: str, total: int) -> Iterable:
    """``iterable`` with a progress bar on stderr, when it is a terminal and
    there is more than one step."""
    if total <= 1:
        return iterable
    from tqdm import tqdm

    return tqdm(
        iterable, desc=desc, total=total, disable=None, leave=False, file=sys.stderr
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; move it into place on success.

    On an exception (or KeyboardInterrupt) the temporary file is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, replace: bool = False):
    """Yield a temporary folder beside ``path``; move it into place on success.

    With ``replace``, an existing ``path`` is swapped out only once the new
    folder is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    )
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes folders private
        if path.exists() and replace:
            old = Path(
                tempfile.mkdtemp(
                    prefix=f".{path.name}.", suffix=".old", dir=path.parent
                )
            )
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_table_suffix(path: str | os.PathLike) -> str:
    """The format (``"csv"`` or ``"parquet"``) named by ``path``'s suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ConfigError(f"{path} must end in .csv or .parquet, to say the format.")
    return suffix[1:]


#: Rows converted and written at a time, so that writing a table of tens of
#: millions of customers never holds a second full copy of it.
WRITE_CHUNK_ROWS = 1_000_000


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, index=True) -> None:
    """Write ``frame`` as CSV or Parquet (by suffix), atomically, in chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = check_table_suffix(path)
    chunks = range(0, max(len(frame), 1), WRITE_CHUNK_ROWS)
    with atomic_path(path) as tmp:
        if kind == "csv":
            for start in chunks:
                part = frame.iloc[start : start + WRITE_CHUNK_ROWS]
                part.to_csv(tmp, index=index, mode="a", header=start == 0)
            return
        writer = None
        try:
            for start in chunks:
                part = frame.iloc[start : start + WRITE_CHUNK_ROWS]
                table = pa.Table.from_pandas(part, preserve_index=index)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()

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


class TableWriter:
    """Append DataFrames to a CSV or Parquet file (by suffix), atomically.

    Use as a context manager: the file appears at ``path`` only when the
    block ends without an exception. Each frame is written in a background
    thread while the caller prepares the next one; at most one write is in
    flight, so memory holds at most two frames.

    >>> import pandas as pd, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> with TableWriter(path, index=False) as out:
    ...     out.write(pd.DataFrame({"x": [1, 2]}))
    ...     out.write(pd.DataFrame({"x": [3]}))
    >>> path.read_text().split()
    ['x', '1', '2', '3']
    """

    def __init__(self, path: str | os.PathLike, *, index: bool = True):
        self.kind = check_table_suffix(path)
        self.path = Path(path)
        self.index = index
        self.n_rows = 0

    def __enter__(self) -> TableWriter:
        from concurrent.futures import ThreadPoolExecutor

        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending = None
        self._parquet = None
        self._wrote = False
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Queue ``frame`` to be written after the frames before it."""
        if self.kind == "parquet":
            import pyarrow as pa

            part = pa.Table.from_pandas(frame, preserve_index=self.index)
        else:
            part = frame
        self._wait()
        self._pending = self._pool.submit(self._write, part, not self._wrote)
        self._wrote = True
        self.n_rows += len(frame)

    def _write(self, part, first: bool) -> None:
        if self.kind == "csv":
            part.to_csv(self._tmp, index=self.index, mode="a", header=first)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            # Dictionary pages pay off for the repetitive columns only; float
            # scores and ids are nearly all distinct.
            index = set(part.schema.pandas_metadata.get("index_columns", []))
            repetitive = [
                f.name
                for f in part.schema
                if not pa.types.is_floating(f.type) and f.name not in index
            ]
            self._parquet = pq.ParquetWriter(
                self._tmp, part.schema, use_dictionary=repetitive
            )
        self._parquet.write_table(part.cast(self._parquet.schema))

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                if not self._wrote:
                    raise ValueError("TableWriter needs at least one frame.")
                self._wait()
        except BaseException as err:
            exc_type, exc, tb = type(err), err, err.__traceback__
            raise
        finally:
            self._pool.shutdown(wait=True)
            if self._parquet is not None:
                self._parquet.close()
            self._atomic.__exit__(exc_type, exc, tb)
        return False


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, index=True) -> None:
    """Write ``frame`` as CSV or Parquet (by suffix), atomically, in chunks."""
    with TableWriter(path, index=index) as out:
        for start in range(0, max(len(frame), 1), WRITE_CHUNK_ROWS):
            out.write(frame.iloc[start : start + WRITE_CHUNK_ROWS])

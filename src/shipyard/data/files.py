"""A project's data file (CSV or Parquet) as a pandas DataFrame, or one sentence saying why not."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import DataCheckFailed

if TYPE_CHECKING:
    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_frame(path: Path, name: str, text_columns: Iterable[str] = ()) -> pd.DataFrame:
    """The table in ``path`` (``name`` is how the project calls it, for messages).

    CSV has no types, so the columns in ``text_columns`` (declared ``dtype: str``) are read as
    text rather than guessed: a column of codes such as ``007`` stays ``"007"``.
    """
    import pandas as pd

    parquet = name.lower().endswith(PARQUET_SUFFIXES)
    what = "Parquet" if parquet else "CSV"
    if not path.is_file():
        raise DataCheckFailed([f"{name}: not a file"])
    try:
        if parquet:
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={column: "str" for column in text_columns})
    except (ValueError, OSError) as exc:  # pandas' and pyarrow's parse errors are ValueErrors
        raise DataCheckFailed([f"{name}: cannot be read as {what} ({_first_line(exc)})"]) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

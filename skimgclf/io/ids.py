"""Image ids: the cells of a table (text, integers, floats pandas made of them) as file-name stems.

Text ids are taken exactly as written: ``" 7.png"`` names the file
`` 7.png``, never ``7.png`` (a different file, perhaps another image). An id
that is empty or only whitespace is refused. Importing this module never
imports TensorFlow.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
import pandas as pd

from ..errors import InputError, shown

__all__ = ["ids_from_table", "raw_ids_key"]


def _id_to_str(value, row):
    """Turn one id cell into the file-name stem it stands for."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"id {value!r} is a boolean, not an image id", row=row)
    if isinstance(value, str):
        text = value
    elif isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        if value != value:  # NaN
            raise InputError("the id is missing (NaN)", row=row)
        # Integer ids that pandas read as float (because of a NaN elsewhere)
        # still name "12.png", never "12.0.png".
        text = str(int(value)) if float(value).is_integer() else repr(float(value))
    elif isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"id {shown(value)} is not valid UTF-8", row=row) from exc
    elif value is None or value is pd.NA:
        raise InputError("the id is missing", row=row)
    else:
        raise InputError(f"id {shown(value)} of type {type(value).__name__} is not a string or integer", row=row)
    if not text:
        raise InputError("the id is empty", row=row)
    if not text.strip():
        raise InputError(f"the id is only whitespace ({shown(text)})", row=row)
    return text


def ids_from_table(X, id_column="id"):
    """Extract image ids as strings from a table, a column or a list.

    Parameters
    ----------
    X : DataFrame, Series, list, or array of shape (n,) or (n, 1)
        The ids. For a DataFrame they are read from ``id_column``.
    id_column : str, default="id"
        The DataFrame column that holds the ids.

    Returns
    -------
    list of str
        One id per row, text exactly as given (spaces kept); integer-valued
        numbers are written without a decimal part (``12.0`` becomes ``"12"``).

    Raises
    ------
    ValueError
        If the column is missing or the shape is wrong; an
        :class:`~skimgclf.errors.InputError` naming the row if an id is
        missing, empty, only whitespace, or not text or an integer.
    """
    if isinstance(X, pd.DataFrame):
        if id_column not in X.columns:
            raise ValueError(
                f"the id column {id_column!r} is not in the table; its columns are "
                f"{[str(c) for c in X.columns]} (set id_column=... to choose another)"
            )
        X = X[id_column]
    if isinstance(X, pd.Series) and isinstance(X.dtype, np.dtype) and X.dtype.kind in "iu":
        X = X.to_numpy()  # NumPy integers (pandas' nullable Int64 stays a Series: it may hold NA)
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu" and (X.ndim == 1 or X.shape[1:] == (1,)):
        return [str(v) for v in X.reshape(-1).tolist()]  # NumPy integers: never missing, never booleans
    if isinstance(X, pd.Series):
        values = X.tolist()
    elif isinstance(X, (str, bytes, os.PathLike)):
        raise ValueError(
            "X must be a table or a list of ids, not a single string; "
            "wrap one id in a list, or read a CSV with pandas.read_csv first"
        )
    else:
        arr = np.asarray(X, dtype=object)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(
                f"X must be a DataFrame, a Series, a list of ids, or an array of shape (n,) "
                f"or (n, 1); got an array of shape {arr.shape}"
            )
        values = arr.tolist()
    return [_id_to_str(v, row) for row, v in enumerate(values)]




def raw_ids_key(X, id_column):
    """A cheap hashable key of the raw ids in ``X``, or None to use the parsed ids."""
    if isinstance(X, pd.DataFrame):
        if id_column not in X.columns:
            return None
        X = X[id_column]
    if isinstance(X, pd.Series):
        values = X.to_numpy()
    elif isinstance(X, (np.ndarray, list, tuple)):
        try:
            values = np.asarray(X)
        except (ValueError, TypeError):
            return None
        if values.ndim == 2 and values.shape[1:] == (1,):
            values = values[:, 0]
    else:
        return None
    if values.ndim != 1:
        return None
    if values.dtype.kind in "iuU":
        return (values.dtype.str, values.tobytes())
    if values.dtype == object:
        items = tuple(values.tolist())
        # 1 == 1.0 == True: keep the types, so a bad id is never served from cache.
        return ("object", frozenset(map(type, items)), items)
    return None

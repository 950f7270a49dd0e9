"""Candle history: files in, downloads from exchanges, coverage."""

from workbench.data.files import CandleFileError, parse_file_name, read_candle_file
from workbench.data.imports import ImportResult, import_file

__all__ = ["CandleFileError", "ImportResult", "import_file", "parse_file_name", "read_candle_file"]

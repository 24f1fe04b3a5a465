"""Domain errors: raised by the library, turned into one readable line at the CLI and API edges."""


class PatronError(Exception):
    """Base of every error Patron raises on purpose; its message tells the user what to do."""


class DataError(PatronError):
    """Input data cannot be used (unreadable file, missing column, no usable rows, too little history)."""


class ModelError(PatronError):
    """A model cannot be fitted, loaded or applied."""

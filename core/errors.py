"""Domain errors: raised by the library, turned into one readable line at the CLI and API edges."""

from sklearn.exceptions import NotFittedError as SklearnNotFittedError


class PatronError(Exception):
    """Base of every error Patron raises on purpose; its message tells the user what to do."""


class DataError(PatronError):
    """Input data cannot be used (unreadable file, missing column, no usable rows, too little history)."""


class ModelError(PatronError):
    """A model cannot be fitted, loaded or applied."""


class NotFittedError(ModelError, SklearnNotFittedError):
    """A model was used before `fit` (or `load`); scikit-learn's `check_is_fitted` callers catch it too."""

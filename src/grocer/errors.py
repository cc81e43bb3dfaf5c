"""The one error type the CLI turns into a single clear line and a non-zero exit."""


class GrocerError(Exception):
    """Bad input or a broken contract: the message says what and where."""

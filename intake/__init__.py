"""xzip-intake: the mailbox, the worker, the store and the command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xzip-intake")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"

"""Exceptions that carry a message a user can act on."""


class TilewiseError(Exception):
    """Base class: the message names the file and the fix."""


class CatalogError(TilewiseError):
    """A catalog entry, its file list or its recipe cannot be used."""


class FileFailure(TilewiseError):
    """One file of a source failed at one step; the other files go on."""

    def __init__(self, step: str, message: str):
        super().__init__(message)
        self.step = step


class DiskFull(TilewiseError):
    """The disk filled up (ENOSPC, EDQUOT): the job's failure, which a rerun with free space fixes,
    never a file's failure kept in a ledger."""

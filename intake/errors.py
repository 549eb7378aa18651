"""The intake package's exceptions: one base, subclasses carry their context."""


class IntakeError(Exception):
    """Base of every error the intake raises on purpose."""


class ConfigError(IntakeError):
    """The configuration is wrong; the message names the key, in one line."""


class MailboxError(IntakeError):
    """The IMAP server could not be reached, refused the login, or failed a command."""


class SendError(IntakeError):
    """An SMTP send failed. ``temporary`` says whether a later retry may succeed; ``unknown`` that the
    connection was lost after the message itself went out, so the server may have taken it."""

    def __init__(self, message: str, temporary: bool, code: int | None = None, unknown: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.code = code
        self.unknown = unknown


class LockedError(IntakeError):
    """Another process holds the worker lock."""

"""The exceptions the CLI turns into exit codes.

``UsageError`` (bad flags, bad config, bad paths the user gave) exits 2; ``JobError`` (a job ran
and failed on its data) exits 1 and is recorded in the audit trail. Both carry one sentence meant
for a person; the CLI prints it without a traceback unless ``--verbose`` is given.
"""


class MedallionError(Exception):
    """Base class for errors the CLI reports as a single clear sentence."""

    exit_code = 1


class UsageError(MedallionError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration file is missing, malformed or invalid (exit code 2)."""


class JobError(MedallionError):
    """A job ran and failed: a data or runtime problem (exit code 1)."""

"""The small exception hierarchy that the CLI turns into one line and exit code 2."""


class MlbenchError(Exception):
    """Base class: a user-facing problem, reported as one line (never a traceback)."""


class UsageError(MlbenchError):
    """Unknown experiment or profile, bad flag value."""


class ConfigError(MlbenchError):
    """Unknown config key, value of the wrong type, unreadable TOML."""


class RunStoreError(MlbenchError):
    """Results root not writable, corrupt run folder."""


class DeviceError(MlbenchError):
    """A device was requested that this machine does not have."""

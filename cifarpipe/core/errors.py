"""The failures a user can fix: a stage prints their message as one line, without a traceback, and exits 1."""


class PipelineError(RuntimeError):
    """Base of the errors a stage reports as one line and exit status 1."""


class ParamsError(PipelineError, ValueError):
    """A params.yaml value that cannot be used."""


class UndeclaredParamError(PipelineError, AttributeError):
    """A stage read a params.yaml key its dvc.yaml entry does not declare."""


class DataError(PipelineError):
    """The archive could not be fetched or is not a valid CIFAR-10 archive."""


class DivergedError(PipelineError):
    """The training loss became NaN or infinite."""


class ToolError(PipelineError):
    """A `cifarpipe` command's failure the user can fix: the CLI prints its one line and exits 1."""

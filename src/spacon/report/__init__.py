"""An interactive HTML report of a result: the domains in 3-D at every alpha, and the numbers."""

from ._payload import payload
from ._sample import sample_per_domain
from ._write import DEFAULT_MAX_POINTS, report, write_report

__all__ = ["DEFAULT_MAX_POINTS", "payload", "report", "sample_per_domain", "write_report"]

"""The providers' Batch APIs (half the price of live calls, results within 24 hours).

Most code never imports this package: ``Pool(runner, items, mode="batch")`` uses it. It is
public for jobs that want the batches themselves::

    from yait_aichain.batch import BatchJob, BatchRequest

    job = BatchJob([BatchRequest("a", model, [{"role": "user", "parts": ["Hi"]}])],
                   poll_interval=60)
    job.submit()
    results = job.wait()          # {"a": BatchResult(output=..., usage=..., error=None)}
"""

from ._job import BatchJob, BatchRequest, BatchResult
from ._journal import Journal, Submitted

__all__ = ["BatchJob", "BatchRequest", "BatchResult", "Journal", "Submitted"]

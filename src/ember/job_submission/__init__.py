"""``ember.job_submission``: submit jobs to a cluster over its dashboard (Ray's names).

>>> from ember.job_submission import JobSubmissionClient, JobStatus
>>> client = JobSubmissionClient("http://127.0.0.1:8265")  # doctest: +SKIP
>>> sid = client.submit_job(entrypoint="python script.py",
...                         runtime_env={"working_dir": "./"})  # doctest: +SKIP
"""

from __future__ import annotations

from ember.job_submission.models import (
    DriverInfo,
    JobDetails,
    JobErrorType,
    JobInfo,
    JobStatus,
    JobType,
)
from ember.job_submission.sdk import AuthenticationError, JobSubmissionClient

__all__ = [
    "AuthenticationError",
    "DriverInfo",
    "JobDetails",
    "JobErrorType",
    "JobInfo",
    "JobStatus",
    "JobSubmissionClient",
    "JobType",
]

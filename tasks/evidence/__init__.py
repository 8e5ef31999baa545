"""Executable evidence: each candidate's change applied to its repository and checked in a sandbox.

`sources` caches repositories per commit, `sandbox` runs untrusted commands under bubblewrap and
kernel limits, `checks` turns each step's output into a finding, `collect` runs the steps for one
candidate, `services` stores the findings as validator results and queues the job.
"""

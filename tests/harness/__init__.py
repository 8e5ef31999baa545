"""Real processes for the tests and the benchmarks: servers, Celery workers and beat.

`processes` has the pieces (free ports, stopping a process group, waiting for a condition),
`servers` PostgreSQL and Redis (scripts/services.sh), a bare Redis, gunicorn and the fake model
server as a process, `workers` the Celery worker and beat, and `suite` what only the test suite
needs: its test database's URL for the processes it starts.
"""

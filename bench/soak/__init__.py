"""The soak benchmark's parts (bench/bench_soak.py runs them): load, faults, checks, report."""

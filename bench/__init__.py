"""``make bench``: redis-benchmark against shoal-server and a real redis-server, same run.

Entry point: ``python -m bench.run_bench`` (see its module docstring for what is measured
and how). Helper modules:

- ``bench.procs``      start/stop server processes by PID; read their CPU time and RSS from /proc
- ``bench.redisbench`` run one redis-benchmark invocation and parse its ``--csv`` output
- ``bench.loader``     a pipelined RESP key loader and a tiny RESP client (memory phase)
"""
